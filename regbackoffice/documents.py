"""The licensing documents a bureau issues (行政许可法 第三十二条, 第三十八条).

受理通知书 at 受理, 补正告知书 at 退回补正 (every item, 一次性告知), 不予受理决定书 at 驳回
during 受理 and 驳回决定书 at 驳回 during 审核/审批 (with the reason and the applicant's
right to administrative review or suit). Each is a numbered ``LicensingDocument`` row,
written by the transition; its PDF is rendered on demand through ``certificate_pdf`` (the
certificate's renderer, fonts and safe fetcher) and ``/verify`` answers for its number.

A stamped paper must read the same forever, so ``issue`` freezes every value the paper
prints (``LicensingDocument.printed``: title, number, bureau, addressee, paragraphs with
the time limit of the day, items, the QR's address) and the PDF is rendered from that
snapshot, never from today's settings, unit or bureau names (docs/workflow.md says why a
snapshot rather than a stored PDF).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import select

from .certificate_pdf import LicensingPaper, render_document_pdf
from .clock import china_date, china_today
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    District,
    DocumentKind,
    LicensingDocument,
    User,
)

# Number prefixes (文号): 特设受字〔2026〕112-000012号.
PREFIXES = {
    DocumentKind.ACCEPTANCE_NOTICE: "特设受字",
    DocumentKind.CORRECTION_NOTICE: "特设补字",
    DocumentKind.REFUSAL_DECISION: "特设不受字",
    DocumentKind.REJECTION_DECISION: "特设驳字",
}
RIGHTS = (
    "如不服本决定，可以自收到本决定书之日起六十日内依法向上一级市场监督管理部门或者本级人民政府"
    "申请行政复议，或者自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。"
)


def issue(
    application: Application,
    kind: DocumentKind,
    user: User,
    *,
    items: list[str] | None = None,
    reason: str | None = None,
) -> LicensingDocument:
    """Write the numbered document row (flushes); the number comes from the row's id."""
    district = db.session.get_one(District, application.district_code)
    today = china_today()
    document = LicensingDocument(
        application_id=application.id,
        kind=kind,
        number=uuid.uuid4().hex[:30],  # replaced below, once the id is known
        district_code=district.code,
        authority=district.authority,
        issue_date=today,
        issued_by_id=user.id,
        unit_name=application.unit_name,
        credit_code=application.credit_code,
        items=list(items or []),
        reason=reason,
    )
    db.session.add(document)
    db.session.flush()
    document.number = f"{PREFIXES[kind]}〔{today.year}〕{district.code[-3:]}-{document.id:06d}号"
    document.printed = _freeze(_live_paper(document, application))
    db.session.flush()
    return document


def _freeze(paper: LicensingPaper) -> dict[str, Any]:
    return {
        "title": paper.title,
        "number": paper.number,
        "authority": paper.authority,
        "issue_date": paper.issue_date.isoformat(),
        "unit_name": paper.unit_name,
        "credit_code": paper.credit_code,
        "application_number": paper.application_number,
        "verify_url": paper.verify_url,
        "paragraphs": list(paper.paragraphs),
        "items": list(paper.items),
    }


def _thaw(printed: dict[str, Any]) -> LicensingPaper:
    return LicensingPaper(
        title=printed["title"],
        number=printed["number"],
        authority=printed["authority"],
        issue_date=date.fromisoformat(printed["issue_date"]),
        unit_name=printed["unit_name"],
        credit_code=printed["credit_code"],
        application_number=printed["application_number"],
        verify_url=printed["verify_url"],
        paragraphs=tuple(printed["paragraphs"]),
        items=tuple(printed["items"]),
    )


def for_application(application: Application) -> list[LicensingDocument]:
    return list(
        db.session.scalars(
            select(LicensingDocument)
            .where(LicensingDocument.application_id == application.id)
            .order_by(LicensingDocument.id)
        )
    )


def by_number(number: str) -> LicensingDocument | None:
    return db.session.scalar(select(LicensingDocument).where(LicensingDocument.number == number))


def rejection_kind(status: ApplicationStatus) -> DocumentKind:
    """驳回 during 受理 is 不予受理; later it is a 驳回 (不予许可) decision."""
    if status is ApplicationStatus.SUBMITTED:
        return DocumentKind.REFUSAL_DECISION
    return DocumentKind.REJECTION_DECISION


def excluded_items(application: Application) -> list[str]:
    rows = db.session.execute(
        select(ApplicationItem.product_no, ApplicationItem.audit_note)
        .where(ApplicationItem.application_id == application.id, ApplicationItem.excluded)
        .order_by(ApplicationItem.row_no)
    ).all()
    return [f"气瓶{product_no}：{note}（不予登记）" for product_no, note in rows]


def _paragraphs(document: LicensingDocument, application: Application) -> tuple[str, ...]:
    submitted = (
        china_date(application.submitted_at) if application.submitted_at else document.issue_date
    )
    when = f"{submitted.year}年{submitted.month}月{submitted.day}日"
    applied = f"你单位于{when}提交的气瓶使用登记申请（申请编号{application.number}）"
    kind = document.kind
    if kind is DocumentKind.ACCEPTANCE_NOTICE:
        limit = current_app.config["DECISION_LIMIT_WORKDAYS"]
        first = f"{applied}，申请材料齐全、符合法定形式，本机关决定予以受理。"
        if document.items:
            first += "经审核，以下气瓶不符合要求，不予登记："
        return (
            first,
            f"本机关将自受理之日起{limit}个工作日内作出是否准予登记的决定。",
        )
    if kind is DocumentKind.CORRECTION_NOTICE:
        return (
            f"{applied}，经审查，申请材料不齐全或者不符合法定形式。根据《中华人民共和国行政许可法》"
            f"第三十二条第一款第（四）项的规定，现一次性告知你单位需要补正的全部内容（共"
            f"{len(document.items)}项）：",
            "请你单位按上述内容补正后，通过系统重新提交申请。补正期间受理期限暂停计算，"
            "自重新提交之日起继续计算。",
        )
    if kind is DocumentKind.REFUSAL_DECISION:
        return (
            f"{applied}，经审查，{document.reason}。根据《中华人民共和国行政许可法》第三十二条"
            "的规定，本机关决定不予受理。",
            RIGHTS,
        )
    return (
        f"{applied}，经审查，{document.reason}。根据《中华人民共和国行政许可法》第三十八条第二款"
        "的规定，本机关决定驳回你单位的申请，不予登记。",
        RIGHTS,
    )


def paper_for(document: LicensingDocument) -> LicensingPaper:
    """The plain values printed on ``document`` as issued (templates never see ORM objects)."""
    if document.printed:
        return _thaw(document.printed)
    # Issued before the snapshot existed (revision 0022): frozen as it reads the first time
    # it is opened since (committed with the request), so from then on it cannot drift.
    paper = _live_paper(document, db.session.get_one(Application, document.application_id))
    document.printed = _freeze(paper)
    db.session.flush()
    return paper


def _live_paper(document: LicensingDocument, application: Application) -> LicensingPaper:
    """What ``document`` prints, worked out now (at issue, then frozen)."""
    from .certificates import verify_url  # certificates imports workflow, which imports us

    return LicensingPaper(
        title=document.kind.label,
        number=document.number,
        authority=document.authority,
        issue_date=document.issue_date,
        unit_name=document.unit_name,
        credit_code=document.credit_code,
        application_number=application.number or "",
        verify_url=verify_url(document.number),
        paragraphs=_paragraphs(document, application),
        items=tuple(document.items),
    )


def pdf(document: LicensingDocument) -> bytes:
    return render_document_pdf(paper_for(document))
