"""Code tables from the seed's appendix (区域代码, 充装介质编码, 设备品种)."""

from __future__ import annotations

import csv
import io
from importlib import resources

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Model


class District(Model):
    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    # 登记机构名称: printed on certificates and stored in the archive as 使用登记机关.
    authority: Mapped[str] = mapped_column(String(200), nullable=False)


class Medium(Model):
    __tablename__ = "media"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)


class Variety(Model):
    __tablename__ = "varieties"

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    covers: Mapped[str] = mapped_column(String(200), nullable=False, default="")


REFERENCE_FILES = {"districts": "districts.csv", "media": "media.csv", "varieties": "varieties.csv"}


def read_reference_rows(table: str) -> list[dict[str, str]]:
    """Rows of one packaged code table (a copy of ``shared/reference``)."""
    text = resources.files("regbackoffice.data").joinpath(REFERENCE_FILES[table]).read_text("utf-8")
    return [
        {key: (value or "").strip() for key, value in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]
