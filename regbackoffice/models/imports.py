"""Excel imports of an application's cylinder list: status, progress and the failed rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .applications import Application
from .base import LabeledEnum, Model, UTCDateTime, created_at_column, enum_type


class ImportStatus(LabeledEnum):
    QUEUED = ("queued", "排队中")
    RUNNING = ("running", "导入中")
    DONE = ("done", "已完成")
    FAILED = ("failed", "失败")


class ImportJob(Model):
    """One upload of the Excel list. Large files are imported by an rq job from storage.

    Its refused rows are ``ImportFailedRow``s (the result page and 下载错误数据 read them
    from there); ``failed_count`` counts them.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_application", "application_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[ImportStatus] = mapped_column(
        enum_type(ImportStatus, "import_status"), nullable=False, default=ImportStatus.QUEUED
    )
    original_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    # The uploaded file, kept in storage only while a background job needs it.
    file_key: Mapped[str | None] = mapped_column(String(100))
    total_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    imported_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Rows hidden or filtered out in Excel: imported like the others, counted for the result.
    hidden_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    # Set with 导入中 in its own commit when a worker begins (the import itself is one
    # transaction): the sweep tells an import whose worker died by it.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    application: Mapped[Application] = relationship()


class ImportFailedRow(Model):
    """One refused row of an import: its Excel row number, its cell texts (template column
    order) and the reasons it was refused. Written chunk by chunk as the import streams
    (in the import's transaction), read in row order by the result page (the first 500)
    and by 下载错误数据 (all of them, page by page)."""

    __tablename__ = "import_failed_rows"

    import_job_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cells: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False)
