"""证书生成: numbering, writing the registered cylinders into the archive, rendering the PDF
in an rq job, printing.

Generation happens in the request (one commit): the gap-free number is allocated, the
archive rows are written and the application becomes 已发证. The PDF is rendered after the
commit by ``render_job`` on a worker; its state is visible (排队中 / 生成中 / 已生成 / 失败).
If Redis is down when the request commits, the certificate simply stays 排队中 and
``requeue_stuck`` (run by every worker every minute) sends it once Redis answers again.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import current_app
from redis import Redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select

from . import audit, jobs, storage, unit_identity, workflow
from .archive import CylinderData, register_cylinders
from .certificate_numbers import allocate_certificate_number
from .certificate_pdf import CertificateDocument, CylinderRow, render_certificate_pdf
from .clock import china_date, china_today
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    Certificate,
    CertificateVersion,
    ChangeItem,
    ChangeKind,
    ChangeRequest,
    ChangeStatus,
    Cylinder,
    CylinderStatus,
    CylinderStatusChange,
    District,
    Medium,
    RenderState,
    Unit,
    User,
    Variety,
    utcnow,
)
from .stats import summaries
from .workflow import WorkflowError

RENDER_JOB = "render_certificate"


def _job_id(certificate: Certificate) -> str:
    return f"certificate-render-{certificate.id}"


def _registered_items(application: Application) -> list[ApplicationItem]:
    return list(
        db.session.scalars(
            select(ApplicationItem)
            .where(
                ApplicationItem.application_id == application.id,
                ApplicationItem.excluded.is_(False),
            )
            .order_by(ApplicationItem.row_no, ApplicationItem.id)
        )
    )


def generate(
    application: Application, user: User, expected_version: int | None, *, today: date | None = None
) -> Certificate:
    """证书生成 for an approved application; the PDF is rendered after the commit."""
    certificate = workflow.certify(
        application, user, expected_version, lambda: _issue(application, user, today)
    )
    _enqueue_after_commit(certificate)
    summaries.enqueue_refresh()  # the dashboard's registrations per month include these cylinders
    return certificate


def _issue(application: Application, user: User, today: date | None) -> Certificate:
    """Assign the number, write the registered cylinders into the archive (证书生成's work)."""
    items = _registered_items(application)
    if not items:
        raise WorkflowError("该申请没有可登记的气瓶。")
    already = db.session.scalars(
        select(Cylinder.product_no).where(
            Cylinder.identity_key.in_([i.identity_key for i in items])
        )
    ).all()
    if already:
        raise WorkflowError(
            "以下气瓶已在档案中登记，不能重复登记：" + "、".join(sorted(already)[:20])
        )
    today = today or china_today()
    district = db.session.get_one(District, application.district_code)
    allocated = allocate_certificate_number(district.code, today.year)
    certificate = Certificate(
        application_id=application.id,
        number=allocated.number,
        district_code=district.code,
        year=allocated.year,
        serial=allocated.serial,
        issue_date=today,
        authority=district.authority,
        cylinder_count=len(items),
        issued_by_id=user.id,
        render_state=RenderState.QUEUED,
    )
    db.session.add(certificate)
    # The registered unit's name unless a clerk confirmed the one typed (unit_identity).
    unit_name, _credit_code = unit_identity.certificate_identity(application)
    cylinders = register_cylinders(
        [CylinderData.from_row(item) for item in items],
        unit=application.unit,
        unit_name=unit_name,
        district=district,
        certificate_no=allocated.number,
        registration_date=today,
        application_id=application.id,
    )
    for item, cylinder in zip(items, cylinders, strict=True):
        item.cylinder_id = cylinder.id
    return certificate


def _enqueue_options(certificate: Certificate) -> dict:
    return {
        "job_id": _job_id(certificate),
        "job_timeout": current_app.config["CERTIFICATE_JOB_TIMEOUT"],
        "retry": Retry(max=2, interval=[5, 30]),
        "failure_ttl": 7 * 24 * 3600,
    }


def _enqueue_after_commit(certificate: Certificate) -> None:
    jobs.enqueue_after_commit(RENDER_JOB, certificate.id, **_enqueue_options(certificate))


def retry(certificate: Certificate, user: User) -> None:
    """失败 → 排队中, by an acceptor's click; the job leaves after the commit."""
    if certificate.render_state is not RenderState.FAILED:
        raise WorkflowError("只有生成失败的证书才能重试。请刷新页面查看最新状态。")
    certificate.render_state = RenderState.QUEUED
    certificate.render_error = None
    db.session.flush()
    audit.record("certificate_render_retried", object_type="certificate", object_id=certificate.id)
    _enqueue_after_commit(certificate)


def verify_url(number: str, version: int = 1) -> str:
    """The QR code's address; from version 2 on it names the version, so that a paper of
    a superseded version verifies as superseded."""
    base = current_app.config["PUBLIC_BASE_URL"] or "http://127.0.0.1:5000"
    url = f"{base}/verify/{quote(number, safe='')}"
    return url if version == 1 else f"{url}?v={version}"


def document_for(certificate: Certificate) -> CertificateDocument:
    """The plain values printed on the certificate (templates never see ORM objects)."""
    application = db.session.get_one(Application, certificate.application_id)
    varieties = dict(db.session.execute(select(Variety.code, Variety.name)).tuples().all())
    media = dict(db.session.execute(select(Medium.code, Medium.name)).tuples().all())
    rows = db.session.execute(
        select(ApplicationItem, Cylinder.id)
        .join(Cylinder, Cylinder.id == ApplicationItem.cylinder_id)
        .where(
            ApplicationItem.application_id == application.id, ApplicationItem.excluded.is_(False)
        )
        .order_by(ApplicationItem.row_no, ApplicationItem.id)
    ).all()
    unit_name, credit_code = unit_identity.certificate_identity(application)
    address = application.address
    entries: list[tuple[Any, str]] = [(item, archive_id) for item, archive_id in rows]
    notes: dict[str, str] = {}
    if certificate.version > 1:
        # A later version: the unit as it is now (更名, 地址变更), cylinders transferred in
        # (their archive data), and each cylinder's 变更或者停用情况.
        unit = db.session.get_one(Unit, application.unit_id)
        unit_name, address = unit.name, unit.address
        known = {archive_id for _, archive_id in rows}
        for cylinder in db.session.scalars(
            select(Cylinder)
            .where(Cylinder.certificate_no == certificate.number)
            .order_by(Cylinder.product_no)
        ):
            if cylinder.id not in known:
                entries.append((cylinder, cylinder.id))
        notes = change_notes(certificate, [archive_id for _, archive_id in entries])
    return CertificateDocument(
        unit_name=unit_name,
        credit_code=credit_code,
        address=address,
        number=certificate.number,
        authority=certificate.authority,
        issue_date=certificate.issue_date,
        verify_url=verify_url(certificate.number, certificate.version),
        edition=edition_label(certificate.version, certificate.reissued),
        show_changes=certificate.version > 1,
        cylinders=tuple(
            CylinderRow(
                product_no=item.product_no,
                variety=varieties.get(item.variety_code, item.variety_code),
                medium=media.get(item.medium_code, item.medium_code),
                manufacturer=item.manufacturer,
                manufacture_month=item.manufacture_month,
                nominal_pressure_mpa=item.nominal_pressure_mpa,
                volume_l=item.volume_l,
                next_inspection_month=item.next_inspection_month or "",
                archive_id=archive_id,
                internal_no=item.internal_no or "",
                last_inspection_date=(
                    item.last_inspection_date.isoformat() if item.last_inspection_date else ""
                ),
                tag=item.tag_type.label if item.tag_type else "",
                change=notes.get(archive_id, ""),
            )
            for item, archive_id in entries
        ),
    )


def edition_label(version: int, reissued: bool) -> str:
    """What the certificate prints next to its number: 第2版, 第3版（补发）; '' for the first."""
    if version == 1:
        return ""
    return f"第{version}版" + ("（补发）" if reissued else "")


def change_notes(certificate: Certificate, archive_ids: Sequence[str]) -> dict[str, str]:
    """变更或者停用情况 per cylinder of the certificate: 新增 / 停用 / 报废 / 注销 / 过户转出 /
    过户转入 and the date (China date) it took effect."""
    cylinders = {
        c.id: c for c in db.session.scalars(select(Cylinder).where(Cylinder.id.in_(archive_ids)))
    }
    transfers: dict[str, tuple[str | None, datetime | None]] = {}
    for cylinder_id, previous_no, approved_at in db.session.execute(
        select(
            ChangeItem.cylinder_id, ChangeItem.previous_certificate_no, ChangeRequest.approved_at
        )
        .join(ChangeRequest, ChangeRequest.id == ChangeItem.change_id)
        .where(
            ChangeItem.cylinder_id.in_(archive_ids),
            ChangeRequest.kind == ChangeKind.TRANSFER,
            ChangeRequest.status == ChangeStatus.APPROVED,
        )
        .order_by(ChangeRequest.approved_at)
    ).tuples():
        transfers[cylinder_id] = (previous_no, approved_at)
    changed_on: dict[str, date] = dict(
        db.session.execute(
            select(CylinderStatusChange.cylinder_id, func.max(CylinderStatusChange.effective_on))
            .where(CylinderStatusChange.cylinder_id.in_(archive_ids))
            .group_by(CylinderStatusChange.cylinder_id)
        )
        .tuples()
        .all()
    )
    notes = {}
    for archive_id in archive_ids:
        cylinder = cylinders.get(archive_id)
        if cylinder is None:
            continue
        if cylinder.certificate_no != certificate.number:
            moved = transfers.get(archive_id)
            notes[archive_id] = "过户转出" + (
                f" {china_date(moved[1])}" if moved and moved[1] else ""
            )
        elif cylinder.status is not CylinderStatus.IN_USE:
            day = changed_on.get(archive_id)
            notes[archive_id] = cylinder.status.label + (f" {day}" if day else "")
        elif archive_id in transfers:
            when = transfers[archive_id][1]
            notes[archive_id] = "过户转入" + (f" {china_date(when)}" if when else "")
        else:
            notes[archive_id] = f"新增 {cylinder.registration_date or ''}".strip()
    return notes


def current_certificate(unit_id: int) -> Certificate | None:
    """The unit's valid (not 注销) certificate issued last: where 过户 cylinders go."""
    return db.session.scalar(
        select(Certificate)
        .join(Application, Application.id == Certificate.application_id)
        .where(Application.unit_id == unit_id, Certificate.voided_at.is_(None))
        .order_by(Certificate.issue_date.desc(), Certificate.id.desc())
        .limit(1)
    )


def issue_new_version(
    certificate: Certificate,
    user: User,
    *,
    change_request_id: int | None,
    reissued: bool = False,
    today: date | None = None,
) -> Certificate:
    """换发 (or 补发): the same number as the next version, rendered by the same job.

    Assumption (docs/workflow.md): a change keeps the registration and its number; the
    certificate is issued again as version N+1 and version N is kept, its PDF included, and
    verifies as superseded on /verify.
    """
    if certificate.voided_at is not None:
        raise WorkflowError(f"使用登记证{certificate.number}已注销，不能换发。")
    db.session.add(
        CertificateVersion(
            certificate_id=certificate.id,
            version=certificate.version,
            reissued=certificate.reissued,
            issue_date=certificate.issue_date,
            cylinder_count=certificate.cylinder_count,
            pdf_key=certificate.pdf_key,
            pdf_sha256=certificate.pdf_sha256,
            change_request_id=change_request_id,
        )
    )
    certificate.version += 1
    certificate.reissued = reissued
    certificate.issue_date = today or china_today()
    certificate.cylinder_count = (
        db.session.scalar(
            select(func.count())
            .select_from(Cylinder)
            .where(Cylinder.certificate_no == certificate.number)
        )
        or 0
    )
    certificate.render_state = RenderState.QUEUED
    certificate.render_error = None
    certificate.render_attempts = 0
    certificate.pdf_key = None
    certificate.pdf_sha256 = None
    certificate.rendered_at = None
    certificate.created_at = utcnow()  # the requeue sweep counts 排队中 from here
    db.session.flush()
    audit.record(
        "certificate_version_issued",
        object_type="certificate",
        object_id=certificate.id,
        actor=user,
        certificate_no=certificate.number,
        version=certificate.version,
        reissued=reissued,
        cylinders=certificate.cylinder_count,
    )
    _enqueue_after_commit(certificate)
    return certificate


def superseded_versions(certificate: Certificate) -> list[CertificateVersion]:
    return list(
        db.session.scalars(
            select(CertificateVersion)
            .where(CertificateVersion.certificate_id == certificate.id)
            .order_by(CertificateVersion.version)
        )
    )


def pdf_key(certificate: Certificate) -> str:
    """One file per certificate version: a re-run replaces it atomically, never adds another;
    a new version (换发, 补发) gets its own, so the superseded version's file stays."""
    suffix = "" if certificate.version == 1 else f"-v{certificate.version}"
    return f"certificates/{certificate.district_code}/{certificate.id}{suffix}.pdf"


@jobs.job(RENDER_JOB)
def render_job(certificate_id: int) -> str:
    """rq job: render and store the PDF. Safe to run twice; commits its own work."""
    certificate = db.session.get(Certificate, certificate_id)
    if certificate is None:
        return "missing"  # the generating transaction rolled back
    if (
        certificate.render_state is RenderState.READY
        and certificate.pdf_key is not None
        and storage.exists(certificate.pdf_key)
    ):
        return "already rendered"
    certificate.render_state = RenderState.RENDERING
    certificate.render_started_at = utcnow()
    certificate.render_attempts += 1
    certificate.render_error = None
    db.session.commit()
    try:
        pdf = render_certificate_pdf(document_for(certificate))
        key = pdf_key(certificate)
        storage.remove_temp_files(key)
        storage.save(key, pdf)
        certificate.pdf_key = key
        certificate.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
        certificate.render_state = RenderState.READY
        certificate.rendered_at = utcnow()
        audit.record(
            "certificate_rendered",
            object_type="certificate",
            object_id=certificate.id,
            bytes=len(pdf),
        )
        db.session.commit()
    except BaseException as exc:  # JobTimeoutException included: never leave 生成中 behind
        db.session.rollback()
        failed = db.session.get_one(Certificate, certificate_id)  # committed as 生成中 above
        failed.render_state = RenderState.FAILED
        failed.render_error = f"{type(exc).__name__}: {exc}"[:500]
        audit.record(
            "certificate_render_failed",
            outcome="failed",
            object_type="certificate",
            object_id=certificate_id,
            error=failed.render_error,
        )
        db.session.commit()
        raise
    return "rendered"


def _job_queued(certificate: Certificate, connection: Redis) -> bool:
    try:
        job = Job.fetch(_job_id(certificate), connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=True) in {"queued", "started", "scheduled", "deferred"}


def requeue_stuck(
    queued_for: timedelta | None = None, rendering_for: timedelta | None = None
) -> int:
    """Send again what never reached a worker (Redis was down) or whose worker died.

    排队中 for longer than ``queued_for`` without a queued rq job, and 生成中 for longer
    than ``rendering_for`` (default: the job timeout plus a minute, after which no live
    worker can still be on it) are enqueued again. Returns how many were sent.
    """
    q = jobs.queue()
    if q is None:
        return 0
    if queued_for is None:
        queued_for = timedelta(seconds=current_app.config.get("CERTIFICATE_REQUEUE_AFTER", 30))
    if rendering_for is None:
        rendering_for = timedelta(seconds=current_app.config["CERTIFICATE_JOB_TIMEOUT"] + 60)
    now = utcnow()
    sent = 0
    stuck = db.session.scalars(
        select(Certificate).where(
            Certificate.render_state.in_([RenderState.QUEUED, RenderState.RENDERING])
        )
    )
    for certificate in stuck:
        if certificate.render_state is RenderState.QUEUED:
            if now - certificate.created_at < queued_for or _job_queued(certificate, q.connection):
                continue
        elif now - (certificate.render_started_at or certificate.created_at) < rendering_for:
            continue
        jobs.send(q, RENDER_JOB, certificate.id, **_enqueue_options(certificate))
        sent += 1
    return sent


def waiting() -> tuple[int, datetime | None]:
    """Certificates 排队中 (their PDF not started yet): how many, and since when."""
    count, oldest = db.session.execute(
        select(func.count(), func.min(Certificate.created_at)).where(
            Certificate.render_state == RenderState.QUEUED
        )
    ).one()
    return count, oldest


def void_certificate(certificate: Certificate, user: User, reason: str) -> int:
    """注销: cancel a use registration. Its cylinders become 停用, so the filling interlock
    refuses them, and /verify reports the certificate as cancelled. Returns the cylinders
    stopped."""
    if certificate.voided_at is not None:
        raise WorkflowError("该使用登记证已注销。请刷新页面查看最新状态。")
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError("请填写注销原因。")
    certificate.voided_at = utcnow()
    certificate.voided_by_id = user.id
    certificate.void_reason = reason[:500]
    stopped = 0
    for cylinder in db.session.scalars(
        select(Cylinder).where(
            Cylinder.certificate_no == certificate.number,
            Cylinder.status == CylinderStatus.IN_USE,
        )
    ):
        cylinder.status = CylinderStatus.STOPPED
        stopped += 1
    db.session.flush()
    audit.record(
        "certificate_voided",
        object_type="application",
        object_id=certificate.application_id,
        certificate_no=certificate.number,
        reason=certificate.void_reason,
        cylinders=stopped,
    )
    return stopped


def certificate_for(application: Application) -> Certificate | None:
    return db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )


def pdf_bytes(certificate: Certificate) -> bytes:
    if certificate.render_state is not RenderState.READY or not certificate.pdf_key:
        raise WorkflowError("证书尚未生成完成，请稍后再试。")
    return storage.read(certificate.pdf_key)


def record_print(certificates: Sequence[Certificate], user: User) -> bytes:
    """打印: count the prints and return one PDF holding every certificate, in order."""
    from pypdf import PdfWriter

    parts = [pdf_bytes(c) for c in certificates]
    now = utcnow()
    for certificate in certificates:
        certificate.print_count += 1
        certificate.last_printed_at = now
        certificate.last_printed_by_id = user.id
    db.session.flush()
    audit.record(
        "certificates_printed",
        object_type="certificate",
        object_id=",".join(str(c.id) for c in certificates)[:50],
        numbers=[c.number for c in certificates][:50],
    )
    if len(parts) == 1:
        return parts[0]
    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
