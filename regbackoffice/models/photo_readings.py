"""机器预读: what Tesseract read from one photo, and its verdict against the cylinder's row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import LabeledEnum, Model, UTCDateTime, enum_type, utcnow


class ReadingVerdict(LabeledEnum):
    # A hint for the clerk, never a decision: no verdict here marks a cylinder 错误.
    MATCH = ("match", "一致")
    MISMATCH = ("mismatch", "不一致")
    UNREAD = ("unread", "未识别")


class PhotoReading(Model):
    """One reading per photo; ``sha256`` and ``engine`` say which content and reader made it
    (a replaced photo or a new reader version makes the reading stale, and it is read again)."""

    __tablename__ = "photo_readings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attachment_id: Mapped[int] = mapped_column(
        ForeignKey("attachments.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    engine: Mapped[str] = mapped_column(String(60), nullable=False)
    verdict: Mapped[ReadingVerdict] = mapped_column(
        enum_type(ReadingVerdict, "reading_verdict"), nullable=False
    )
    product_no_read: Mapped[str | None] = mapped_column(String(60))
    confidence: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # 0–100
    manufacturer_read: Mapped[str | None] = mapped_column(String(100))
    manufacture_month_read: Mapped[str | None] = mapped_column(String(7))
    note: Mapped[str | None] = mapped_column(String(200))  # why, in Chinese, for the badge
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
