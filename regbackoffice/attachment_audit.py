"""审核附件: the acceptor checks every cylinder's data against its photos, page by page.

Verdicts default to 正确; 错误 needs a note. Saving is idempotent (a double click or a
back-and-resubmit of the same page changes nothing), and each cylinder carries a revision
so that a verdict another clerk changed meanwhile is never silently overwritten.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select, tuple_

from . import audit, prereading, workflow
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AuditVerdict,
    PhotoReading,
    ReadingVerdict,
    User,
    utcnow,
)
from .workflow import WorkflowError, require_status

PAGE_SIZES = (10, 20, 50)
MAX_NOTE = 200


@dataclass(frozen=True)
class Progress:
    total: int
    audited: int
    wrong: int

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.audited == self.total


@dataclass
class AuditPage:
    items: list[ApplicationItem]
    photos: dict[int, list[Attachment]]
    page: int
    pages: int
    size: int
    only_wrong: bool
    progress: Progress
    # 机器预读: per photo its reading, per verdict the cylinders, and the page's options.
    readings: dict[int, PhotoReading] = field(default_factory=dict)
    machine_counts: dict[ReadingVerdict, int] = field(default_factory=dict)
    unread_photos: int = 0  # photos still waiting for the reader
    machine: ReadingVerdict | None = None
    machine_first: bool = False

    @property
    def is_last(self) -> bool:
        return self.page >= self.pages


@dataclass(frozen=True)
class VerdictEntry:
    item_id: int
    verdict: AuditVerdict
    note: str
    revision: int  # the item's audit_revision when the page was shown


@dataclass
class SaveResult:
    changed: int = 0
    unchanged: int = 0
    conflicts: list[ApplicationItem] = field(default_factory=list)


def progress(application: Application) -> Progress:
    counts = workflow.verdict_counts(application)
    total = sum(counts.values())
    return Progress(
        total=total,
        audited=total - counts.get(AuditVerdict.PENDING, 0),
        wrong=counts.get(AuditVerdict.WRONG, 0),
    )


def acceptance_summary(application: Application, listed: int = 50) -> str:
    """What 受理 will do, said before it commits: who is registered, who is excluded."""
    stats = progress(application)
    wrong = db.session.scalars(
        select(ApplicationItem.product_no)
        .where(
            ApplicationItem.application_id == application.id,
            ApplicationItem.audit_verdict == AuditVerdict.WRONG,
        )
        .order_by(ApplicationItem.row_no)
        .limit(listed)
    ).all()
    text = f"{stats.total - stats.wrong} 只正确，将予登记"
    if stats.wrong:
        more = f"等{stats.wrong}只" if stats.wrong > len(wrong) else ""
        text += f"；{stats.wrong} 只错误，将被排除：{'、'.join(wrong)}{more}"
    return text + "。确认受理？"


def load_page(
    application: Application,
    page: int,
    size: int,
    only_wrong: bool,
    *,
    machine: ReadingVerdict | None = None,
    machine_first: bool = False,
) -> AuditPage:
    """One page of cylinders with their photos and readings: a few queries whatever the size.

    ``machine`` keeps only the cylinders of that 机器预读 verdict; ``machine_first`` orders
    不一致 first, then 未识别, then 一致 (each by row).
    """
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    stats = progress(application)
    machine_counts, unread_photos = prereading.summary(application)
    query = select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    total = stats.total
    if only_wrong:
        query = query.where(ApplicationItem.audit_verdict == AuditVerdict.WRONG)
        total = stats.wrong
    plain_machine_order = machine_first and machine is None and not only_wrong
    if not plain_machine_order:
        query = prereading.machine_view(query, application.id, machine, machine_first)
    if machine is not None:
        total = machine_counts[machine] if not only_wrong else _count(query)
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    if plain_machine_order:  # every cylinder, doubtful first: ranges of an index, no sort
        items = prereading.machine_first_items(query, machine_counts, (page - 1) * size, size)
    else:
        items = list(
            db.session.scalars(
                query.order_by(ApplicationItem.row_no, ApplicationItem.id)
                .offset((page - 1) * size)
                .limit(size)
            )
        )
    photos = _photos_of(items)
    readings = prereading.readings_for([p.id for ps in photos.values() for p in ps])
    return AuditPage(
        items,
        photos,
        page,
        pages,
        size,
        only_wrong,
        stats,
        readings=readings,
        machine_counts=machine_counts,
        unread_photos=unread_photos,
        machine=machine,
        machine_first=machine_first,
    )


def _photos_of(items: list[ApplicationItem]) -> dict[int, list[Attachment]]:
    photos: dict[int, list[Attachment]] = defaultdict(list)
    if items:
        for photo in db.session.scalars(
            select(Attachment)
            .where(Attachment.item_id.in_([i.id for i in items]))
            .order_by(Attachment.kind, Attachment.id)
        ):
            photos[photo.item_id].append(photo)
    return dict(photos)


def load_window(
    application: Application, offset: int, limit: int, *, machine_first: bool = False
) -> tuple[list[ApplicationItem], dict[int, list[Attachment]]]:
    """Cylinders ``offset``… in audit order with their photos (the 逐只审核 mode's window);
    ``machine_first`` puts 机器预读 不一致 first, then 未识别, as the pager can."""
    query = select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    offset, limit = max(0, offset), max(1, min(limit, 100))
    if machine_first:
        counts = prereading.counts(application)
        items = prereading.machine_first_items(query, counts, offset, limit)
    else:
        items = list(
            db.session.scalars(
                query.order_by(ApplicationItem.row_no, ApplicationItem.id)
                .offset(offset)
                .limit(limit)
            )
        )
    return items, _photos_of(items)


def first_pending_index(application: Application) -> int:
    """Where an interrupted audit resumes: the position of the first cylinder not yet audited."""
    first = db.session.execute(
        select(ApplicationItem.row_no, ApplicationItem.id)
        .where(
            ApplicationItem.application_id == application.id,
            ApplicationItem.audit_verdict == AuditVerdict.PENDING,
        )
        .order_by(ApplicationItem.row_no, ApplicationItem.id)
        .limit(1)
    ).first()
    if first is None:
        return 0
    return db.session.scalars(
        select(func.count())
        .select_from(ApplicationItem)
        .where(
            ApplicationItem.application_id == application.id,
            tuple_(ApplicationItem.row_no, ApplicationItem.id) < tuple_(first.row_no, first.id),
        )
    ).one()


def _count(query: Select[tuple[ApplicationItem]]) -> int:
    return db.session.scalars(select(func.count()).select_from(query.subquery())).one()


def save_verdicts(application: Application, user: User, entries: list[VerdictEntry]) -> SaveResult:
    """Store one page's verdicts. Raises WorkflowError for invalid input (nothing saved)."""
    require_status(application, ApplicationStatus.SUBMITTED)
    for entry in entries:
        if entry.verdict is AuditVerdict.WRONG and not entry.note.strip():
            raise WorkflowError("标记为“错误”的气瓶必须填写备注，说明错误原因。")
        if len(entry.note) > MAX_NOTE:
            raise WorkflowError(f"备注不能超过{MAX_NOTE}字。")
        if entry.verdict is AuditVerdict.PENDING:
            raise WorkflowError("审核结果只能是“正确”或“错误”。")
    ids = [e.item_id for e in entries]
    items = {
        item.id: item
        for item in db.session.scalars(
            select(ApplicationItem)
            .where(ApplicationItem.application_id == application.id, ApplicationItem.id.in_(ids))
            .with_for_update()
        )
    }
    if len(items) != len(set(ids)):
        raise WorkflowError("提交的气瓶不属于该申请，请刷新页面后重试。")

    result = SaveResult()
    now = utcnow()
    for entry in entries:
        item = items[entry.item_id]
        note = entry.note.strip() if entry.verdict is AuditVerdict.WRONG else None
        if item.audit_verdict == entry.verdict and item.audit_note == note:
            result.unchanged += 1  # a resubmitted page: nothing to do
            continue
        # Changed since this page was shown, by anyone (another clerk, or the same clerk in
        # another tab or on a page brought back with the back button): never overwritten.
        if item.audit_revision != entry.revision:
            result.conflicts.append(item)
            continue
        item.audit_verdict = entry.verdict
        item.audit_note = note
        item.audited_by_id = user.id
        item.audited_at = now
        item.audit_revision += 1
        result.changed += 1
    db.session.flush()
    if result.changed or result.conflicts:
        audit.record(
            "attachment_audit_saved",
            object_type="application",
            object_id=application.id,
            changed=result.changed,
            conflicts=len(result.conflicts),
        )
    return result


def complete(application: Application, user: User, expected_version: int | None) -> None:
    """完成: every cylinder has a verdict; the application can now be accepted."""
    require_status(application, ApplicationStatus.SUBMITTED)
    stats = progress(application)
    if not stats.complete:
        raise WorkflowError(
            f"还有{stats.total - stats.audited}只气瓶未审核，"
            "请逐页审核（点击“下一页”保存）后再点击“完成”。"
        )
    workflow.complete_audit(
        application, user, expected_version, total=stats.total, wrong=stats.wrong
    )
