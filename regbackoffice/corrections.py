"""退回补正 (一次性告知): the notice's items, what the applicant changed, the round's record.

The transitions themselves (``request_correction``, ``resubmit``) are in ``workflow``; this
module gathers the items a clerk confirms, marks the cylinders the applicant changes while
待补正 (the draft editing paths call ``note_change``), and summarises a round for the
clerk's next audit and the applicant's progress page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select

from .clock import china_date, china_today
from .domain_errors import DomainError
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    AuditVerdict,
    CorrectionRound,
)
from .workdays import workdays_between

# ApplicationItem.correction_change words → what the clerk reads.
CHANGE_LABELS = {"data": "数据已修改", "photos": "照片已更换", "new": "补正时新增"}
MAX_ITEMS = 200  # items on one notice
MAX_ITEM_LENGTH = 500


def gathered_items(application: Application) -> list[str]:
    """The cylinders marked 错误 with their notes, as notice items (the clerk confirms)."""
    rows = db.session.execute(
        select(ApplicationItem.product_no, ApplicationItem.audit_note)
        .where(
            ApplicationItem.application_id == application.id,
            ApplicationItem.audit_verdict == AuditVerdict.WRONG,
            ApplicationItem.excluded.is_(False),
        )
        .order_by(ApplicationItem.row_no, ApplicationItem.id)
    ).all()
    return [f"气瓶{product_no}：{note}" for product_no, note in rows]


def split_items(text: str) -> list[str]:
    """One notice item per non-empty line of the clerk's text."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def rounds(application: Application) -> list[CorrectionRound]:
    return list(
        db.session.scalars(
            select(CorrectionRound)
            .where(CorrectionRound.application_id == application.id)
            .order_by(CorrectionRound.round_no)
        )
    )


def round_count(application: Application) -> int:
    return (
        db.session.scalar(
            select(func.count()).where(CorrectionRound.application_id == application.id)
        )
        or 0
    )


def open_round(application: Application) -> CorrectionRound | None:
    """The round of an application now 待补正 (None otherwise)."""
    if application.status is not ApplicationStatus.RETURNED:
        return None
    return db.session.scalar(
        select(CorrectionRound)
        .where(
            CorrectionRound.application_id == application.id,
            CorrectionRound.resubmitted_at.is_(None),
        )
        .order_by(CorrectionRound.round_no.desc())
        .limit(1)
    )


def last_round(application: Application) -> CorrectionRound | None:
    return db.session.scalar(
        select(CorrectionRound)
        .where(CorrectionRound.application_id == application.id)
        .order_by(CorrectionRound.round_no.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Waiting:
    """How long an application has been 待补正 (no legal time limit: shown, not enforced)."""

    since: datetime
    days: int  # calendar days since the notice
    workdays: int  # working days since the notice (the bureau's clock stands still)


def waiting(application: Application, today: date | None = None) -> Waiting | None:
    """How long the open round has waited on the applicant (None unless 待补正)."""
    current = open_round(application)
    if current is None:
        return None
    today = today or china_today()
    start = china_date(current.requested_at)
    return Waiting(current.requested_at, (today - start).days, workdays_between(start, today))


class CorrectionError(DomainError):
    """A change the current 补正 round does not allow."""


def require_cylinder_edits(
    application: Application, error: type[DomainError] = CorrectionError
) -> None:
    """Cylinders and photos may change in a round returned from 受理, not from 审核 (they
    were audited and the excluded ones freed: only the unit information may change then)."""
    current = open_round(application)
    if current is not None and current.from_status is not ApplicationStatus.SUBMITTED:
        raise error(
            "该申请是在审核环节退回补正的：气瓶和照片已经受理审核，不能再修改，"
            "请按补正告知书修改单位基本信息后重新提交。"
        )


def paused_workdays(application: Application, from_status: ApplicationStatus) -> int:
    """Working days the step of ``from_status`` stood still in finished 补正 rounds, counted
    with today's calendar: the step's deadline is its start plus its limit plus these."""
    if application.resubmitted_at is None:  # never returned: no query
        return 0
    return sum(
        workdays_between(china_date(r.requested_at), china_date(r.resubmitted_at))
        for r in rounds(application)
        if r.from_status is from_status and r.resubmitted_at is not None
    )


def note_change(item: ApplicationItem, change: str) -> None:
    """The applicant changed ``item`` while 待补正: mark it, and its verdict goes back to
    未审核 (the clerk audits it again; unchanged cylinders keep theirs)."""
    if item.application.status is not ApplicationStatus.RETURNED:
        return
    require_cylinder_edits(item.application)
    changes = set(filter(None, (item.correction_change or "").split(",")))
    changes.add(change)
    item.correction_change = ",".join(sorted(changes))
    # A new revision even when it was 未审核 already: a mark the clerk's browser kept from
    # before the change (audit-pager.js) is then known not to apply to what came back.
    item.audit_revision += 1
    if item.audit_verdict is not AuditVerdict.PENDING:
        item.audit_verdict = AuditVerdict.PENDING
        item.audited_by_id = None
        item.audited_at = None


def note_removed(item: ApplicationItem) -> None:
    """The applicant removed ``item`` while 待补正: the round remembers its 产品编号 (not of a
    cylinder added in the same round: the clerk never saw it)."""
    current = open_round(item.application)
    if current is not None and "new" not in (item.correction_change or ""):
        require_cylinder_edits(item.application)
        current.removed = [*current.removed, item.product_no]


def change_words(item: ApplicationItem) -> list[str]:
    return [CHANGE_LABELS[c] for c in (item.correction_change or "").split(",") if c]


@dataclass
class ChangeSummary:
    """What came back from the applicant, for the clerk's next audit."""

    round: CorrectionRound
    changed: list[tuple[str, list[str]]] = field(default_factory=list)  # 产品编号, words
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unit_fields: list[str] = field(default_factory=list)  # labels of changed unit fields

    @property
    def nothing_changed(self) -> bool:
        return not (self.changed or self.added or self.removed or self.unit_fields)


def change_summary(application: Application, limit: int = 200) -> ChangeSummary | None:
    """Changes since the last 补正 notice, once resubmitted (None without a round)."""
    from .applications import UNIT_FIELDS  # applications imports this module

    last = last_round(application)
    if last is None or last.resubmitted_at is None:
        return None
    summary = ChangeSummary(round=last, removed=list(last.removed))
    items: Sequence[ApplicationItem] = db.session.scalars(
        select(ApplicationItem)
        .where(
            ApplicationItem.application_id == application.id,
            ApplicationItem.correction_change.is_not(None),
        )
        .order_by(ApplicationItem.row_no)
        .limit(limit)
    ).all()
    for item in items:
        if "new" in (item.correction_change or ""):
            summary.added.append(item.product_no)
        else:
            summary.changed.append((item.product_no, change_words(item)))
    summary.unit_fields = [
        label
        for name, (label, _limit) in UNIT_FIELDS.items()
        if (last.unit_info.get(name) or "") != (getattr(application, name) or "")
    ]
    return summary
