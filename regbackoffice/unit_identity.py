"""The unit named on an application versus the unit that filed it.

An applicant works for one registered unit (``Application.unit``), but the form lets her
type the 使用单位 name and 统一社会信用代码 freely. Typed values that differ from the
registered ones are shown to the bureau (``differences``), and the certificate keeps the
registered ones (``certificate_identity``) unless an acceptor confirms the change for this
application (``confirm_change``: named, audited, with a reason). The confirmation covers
exactly the values confirmed: an edit afterwards falls back to the registered ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import audit
from .credit_code import normalize_credit_code
from .extensions import db
from .models import Application, ApplicationStatus, Role, User, utcnow
from .workflow import WorkflowError, check_version

# Before the certificate exists: afterwards the printed values are history.
CONFIRMABLE = frozenset(
    {
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.ACCEPTED,
        ApplicationStatus.REVIEWED,
        ApplicationStatus.APPROVED,
    }
)


@dataclass(frozen=True)
class Difference:
    label: str
    typed: str
    registered: str


def _same_code(a: str, b: str) -> bool:
    return normalize_credit_code(a or "") == normalize_credit_code(b or "")


def differences(application: Application) -> list[Difference]:
    """Where the application names another unit than the one that filed it."""
    unit = application.unit
    found = []
    if (application.unit_name or "").strip() != unit.name.strip():
        found.append(Difference("使用单位", application.unit_name, unit.name))
    if not _same_code(application.credit_code, unit.credit_code):
        found.append(Difference("统一社会信用代码", application.credit_code, unit.credit_code))
    return found


def is_confirmed(application: Application) -> bool:
    """The typed values are the ones an acceptor confirmed (and not changed since)."""
    return (
        application.identity_confirmed_at is not None
        and application.identity_confirmed_name == application.unit_name
        and application.identity_confirmed_code == application.credit_code
    )


def certificate_identity(application: Application) -> tuple[str, str]:
    """(使用单位, 统一社会信用代码) for the certificate and the cylinder archive."""
    if not differences(application) or is_confirmed(application):
        return application.unit_name, application.credit_code
    return application.unit.name, application.unit.credit_code


def confirm_change(
    application: Application, user: User, reason: str, expected_version: int | None
) -> None:
    """确认单位信息变更: the typed name and code go on the certificate (audited)."""
    check_version(application, expected_version)
    if user.role is not Role.ACCEPTOR:
        raise WorkflowError("只有受理人员可以确认使用单位信息变更。")
    if application.status not in CONFIRMABLE:
        raise WorkflowError(
            f"申请状态为“{application.status.label}”，不能再确认使用单位信息变更"
            "（证书已生成或申请已驳回）。"
        )
    found = differences(application)
    if not found:
        raise WorkflowError("申请填写的使用单位名称和统一社会信用代码与登记的一致，无需确认。")
    reason = reason.strip()
    if not reason:
        raise WorkflowError("请填写确认理由（例如：已核验营业执照，单位已更名）。")
    application.identity_confirmed_name = application.unit_name
    application.identity_confirmed_code = application.credit_code
    application.identity_confirmed_at = utcnow()
    application.identity_confirmed_by_id = user.id
    db.session.flush()
    audit.record(
        "unit_identity_confirmed",
        object_type="application",
        object_id=application.id,
        reason=reason[:500],
        **{
            f"{'name' if d.label == '使用单位' else 'credit_code'}_{kind}": value
            for d in found
            for kind, value in (("typed", d.typed), ("registered", d.registered))
        },
    )
