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
from .clock import china_today
from .extensions import db
from .models import (
    Application,
    ApplicationItem,
    Certificate,
    Cylinder,
    CylinderStatus,
    District,
    Medium,
    RenderState,
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


def verify_url(number: str) -> str:
    base = current_app.config["PUBLIC_BASE_URL"] or "http://127.0.0.1:5000"
    return f"{base}/verify/{quote(number, safe='')}"


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
    return CertificateDocument(
        unit_name=unit_name,
        credit_code=credit_code,
        address=application.address,
        number=certificate.number,
        authority=certificate.authority,
        issue_date=certificate.issue_date,
        verify_url=verify_url(certificate.number),
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
            )
            for item, archive_id in rows
        ),
    )


def pdf_key(certificate: Certificate) -> str:
    """One file per certificate: a re-run replaces it atomically, never adds another."""
    return f"certificates/{certificate.district_code}/{certificate.id}.pdf"


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
