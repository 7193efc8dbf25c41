"""证书生成: numbering, archive, rendering in an rq worker, printing, download, verification."""

import io
import re

import pytest
from pypdf import PdfReader
from rq import Queue, SimpleWorker
from sqlalchemy import select

from regbackoffice import certificates, jobs
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationItem,
    ApplicationStatus,
    Certificate,
    Cylinder,
    CylinderStatus,
    RenderState,
    Role,
)

from . import factories
from .conftest import csrf_token_from, login


@pytest.fixture
def approved():
    return factories.make_approved_application(
        factories.make_unit("500112", name="重庆证书测试燃气有限公司"), items=3
    )


@pytest.fixture
def acceptor(login_as):
    return login_as(Role.ACCEPTOR, district_code="500112")


def run_worker(app, redis_conn) -> None:
    """Run the queued jobs in-process with a real rq worker on the test Redis."""
    SimpleWorker(
        [Queue(app.config["RQ_QUEUE"], connection=redis_conn)], connection=redis_conn
    ).work(burst=True)


def generate(client, application):
    html = client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    db.session.refresh(application)
    return client.post(
        f"/bureau/applications/{application.id}/certificate",
        data={"csrf_token": csrf_token_from(html), "version": application.version_id},
    )


def certificate_of(application) -> Certificate:
    return db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )


def test_generation_numbers_the_certificate_and_writes_the_archive(
    app, client, acceptor, approved, redis_conn
):
    assert generate(client, approved).status_code == 302
    db.session.refresh(approved)
    certificate = certificate_of(approved)
    assert approved.status is ApplicationStatus.CERTIFIED
    assert re.fullmatch(r"瓶渝112\d{5}\(\d\d\)", certificate.number)
    assert approved.certificate_no == certificate.number
    assert certificate.render_state is RenderState.QUEUED
    cylinders = db.session.scalars(
        select(Cylinder).where(Cylinder.application_id == approved.id)
    ).all()
    assert len(cylinders) == 3 == certificate.cylinder_count
    for cylinder in cylinders:
        assert cylinder.status is CylinderStatus.IN_USE
        assert cylinder.certificate_no == certificate.number
        assert cylinder.registration_authority == "重庆市渝北区市场监督管理局"
        assert cylinder.use_unit_name == "重庆证书测试燃气有限公司"
    items = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == approved.id)
    )
    assert {i.cylinder_id for i in items} == {c.id for c in cylinders}
    queued = Queue(app.config["RQ_QUEUE"], connection=redis_conn).get_jobs()
    assert sorted(jobs.name_of(job) for job in queued) == [
        "refresh_dashboard_stats",  # the dashboard's monthly registrations
        "render_certificate",
    ]


def test_worker_renders_the_pdf_with_unit_number_count_and_every_product_no(
    app, client, acceptor, redis_conn
):
    application = factories.make_approved_application(
        factories.make_unit("500112", name="三十只气瓶公司"), items=30
    )
    generate(client, application)
    run_worker(app, redis_conn)
    certificate = certificate_of(application)
    db.session.refresh(certificate)
    assert certificate.render_state is RenderState.READY
    with client.get(f"/certificates/{certificate.id}/download") as response:
        assert response.mimetype == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    compact = re.sub(r"\s+", "", text)
    assert "三十只气瓶公司" in compact and certificate.number in compact and "30只" in compact
    products = db.session.scalars(
        select(ApplicationItem.product_no).where(ApplicationItem.application_id == application.id)
    )
    for product_no in products:
        assert product_no in compact


def test_excluded_cylinders_are_not_registered(client, acceptor):
    application = factories.make_approved_application(factories.make_unit("500112"), items=2)
    item = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).first()
    item.excluded = True
    item.audit_verdict = type(item.audit_verdict).WRONG
    item.audit_note = "不符"
    db.session.flush()
    generate(client, application)
    assert certificate_of(application).cylinder_count == 1


def test_double_clicked_generation_says_generated_and_keeps_one_number(client, acceptor, approved):
    db.session.refresh(approved)
    version = approved.version_id
    token = csrf_token_from(
        client.get(f"/bureau/applications/{approved.id}").get_data(as_text=True)
    )
    url = f"/bureau/applications/{approved.id}/certificate"
    assert client.post(url, data={"csrf_token": token, "version": version}).status_code == 302
    again = client.post(url, data={"csrf_token": token, "version": version})
    assert again.status_code == 302  # the clerk's own double click: no 409 page after success
    assert "重复提交，未再次生成" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert (
        len(
            db.session.scalars(
                select(Certificate).where(Certificate.application_id == approved.id)
            ).all()
        )
        == 1
    )


def test_reviewer_cannot_generate(client, login_as, approved):
    login_as(Role.REVIEWER, district_code="500112")
    assert generate(client, approved).status_code == 403


def test_with_redis_down_generation_commits_and_the_job_leaves_when_redis_returns(
    app, client, acceptor, approved, redis_conn
):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/15"  # nothing listens there
    try:
        assert generate(client, approved).status_code == 302
    finally:
        app.config["REDIS_URL"] = (
            redis_conn.connection_pool.connection_kwargs
            and f"redis://127.0.0.1:6379/{redis_conn.connection_pool.connection_kwargs['db']}"
        )
    certificate = certificate_of(approved)
    assert certificate.render_state is RenderState.QUEUED
    assert redis_conn.llen(f"rq:queue:{app.config['RQ_QUEUE']}") == 0
    from datetime import timedelta

    assert certificates.requeue_stuck(queued_for=timedelta(0)) == 1
    assert certificates.requeue_stuck(queued_for=timedelta(0)) == 0  # already pending: not twice
    run_worker(app, redis_conn)
    db.session.refresh(certificate)
    assert certificate.render_state is RenderState.READY


def test_render_job_run_twice_keeps_one_file(
    app, client, acceptor, approved, redis_conn, shadow_app
):
    from pathlib import Path

    generate(client, approved)
    certificate = certificate_of(approved)
    assert certificates.render_job(certificate.id) == "rendered"
    assert certificates.render_job(certificate.id) == "already rendered"
    folder = Path(shadow_app.config["STORAGE_DIR"]) / "certificates" / "500112"
    mine = [p.name for p in folder.iterdir() if p.name.startswith((f"{certificate.id}.", ".tmp"))]
    assert mine == [f"{certificate.id}.pdf"]


def test_failed_render_shows_failed_and_can_be_retried(
    app, client, acceptor, approved, redis_conn, monkeypatch
):
    generate(client, approved)
    certificate = certificate_of(approved)

    def broken(_doc):
        raise RuntimeError("font missing")

    monkeypatch.setattr(certificates, "render_certificate_pdf", broken)
    with pytest.raises(RuntimeError):
        certificates.render_job(certificate.id)
    db.session.refresh(certificate)
    assert (
        certificate.render_state is RenderState.FAILED
        and "font missing" in certificate.render_error
    )
    page = client.get(f"/bureau/applications/{approved.id}").get_data(as_text=True)
    assert "失败" in page and "重试" in page
    monkeypatch.undo()
    redis_conn.flushdb()
    response = client.post(
        f"/certificates/{certificate.id}/retry", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 302
    run_worker(app, redis_conn)
    db.session.refresh(certificate)
    assert certificate.render_state is RenderState.READY


def test_printing_several_certificates_gives_one_pdf_and_counts_prints(
    app, client, acceptor, redis_conn
):
    apps = [
        factories.make_approved_application(factories.make_unit("500112"), items=1)
        for _ in range(2)
    ]
    for application in apps:
        generate(client, application)
    run_worker(app, redis_conn)
    ids = [certificate_of(a).id for a in apps]
    page = client.get("/certificates").get_data(as_text=True)
    response = client.post(
        "/certificates/print", data={"csrf_token": csrf_token_from(page), "certificate": ids}
    )
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    for cid in ids:
        certificate = db.session.get(Certificate, cid)
        db.session.refresh(certificate)
        assert certificate.number in re.sub(r"\s+", "", text)
        assert certificate.print_count == 1 and certificate.last_printed_by_id == acceptor.id
    listing = client.get("/certificates").get_data(as_text=True)
    assert acceptor.display_name in listing


def test_applicant_downloads_own_certificate_and_not_anothers(
    app, client, acceptor, approved, redis_conn
):
    generate(client, approved)
    run_worker(app, redis_conn)
    certificate = certificate_of(approved)
    applicant = app.test_client()
    login(applicant, factories.make_user(Role.APPLICANT, unit=approved.unit))
    with applicant.get(f"/certificates/{certificate.id}/download") as response:
        assert response.status_code == 200 and response.data.startswith(b"%PDF")
        # A real server sends headers as latin-1: the Chinese file name must be encoded.
        response.headers["Content-Disposition"].encode("latin-1")
    stranger = app.test_client()
    login(stranger, factories.make_user(Role.APPLICANT, unit=factories.make_unit("500112")))
    assert stranger.get(f"/certificates/{certificate.id}/download").status_code == 404


def test_verify_page_confirms_a_certificate_and_reports_unknown_numbers(client, acceptor, approved):
    generate(client, approved)
    certificate = certificate_of(approved)
    anonymous = client.application.test_client()
    page = anonymous.get(f"/verify/{certificate.number}").get_data(as_text=True)
    assert (
        "有效" in page
        and "重庆证书测试燃气有限公司" in page
        and "3 只" in page
        and "重庆市渝北区市场监督管理局" in page
    )
    unknown = anonymous.get("/verify/瓶渝11299999(26)")
    assert unknown.status_code == 404 and "未查询到" in unknown.get_data(as_text=True)


def test_voided_certificate_verifies_as_voided_and_stops_its_cylinders(client, acceptor, approved):
    generate(client, approved)
    certificate = certificate_of(approved)
    page = client.get(f"/certificates/{certificate.id}/void")
    assert "此操作不可撤销" in page.get_data(as_text=True)
    refused = client.post(
        f"/certificates/{certificate.id}/void",
        data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "reason": "单位注销"},
    )
    assert "请勾选确认" in refused.get_data(as_text=True)
    response = client.post(
        f"/certificates/{certificate.id}/void",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "reason": "单位注销",
            "confirm": "y",
        },
    )
    assert response.status_code == 302
    verify = (
        client.application.test_client().get(f"/verify/{certificate.number}").get_data(as_text=True)
    )
    assert "已注销" in verify and "有效" not in verify
    statuses = db.session.scalars(
        select(Cylinder.status).where(Cylinder.certificate_no == certificate.number)
    )
    assert set(statuses) == {CylinderStatus.STOPPED}
    again = client.get(f"/certificates/{certificate.id}/void")
    assert again.status_code == 409


def test_other_district_acceptor_cannot_void(client, login_as, approved, app):
    acceptor_client = app.test_client()
    login(acceptor_client, factories.make_user(Role.ACCEPTOR, district_code="500112"))
    generate(acceptor_client, approved)
    login_as(Role.ACCEPTOR, district_code="500105")
    assert client.get(f"/certificates/{certificate_of(approved).id}/void").status_code == 404
