"""Certificates follow the changes: a new version with the same number (换发, 补发), the
annex's 变更或者停用情况, and /verify telling the current version from a superseded one."""

from __future__ import annotations

import io

import pypdf
from sqlalchemy import select

from regbackoffice import certificates
from regbackoffice.clock import china_today
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationItem,
    Certificate,
    CertificateVersion,
    Cylinder,
    RenderState,
    Role,
)

from . import factories
from .test_change_requests import accept_and_approve, actors, submit, submitted  # noqa: F401


def certified(unit, items):
    application = factories.make_approved_application(unit, items=items)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=unit.district_code)
    certificate = certificates.generate(application, acceptor, application.version_id)
    cylinders = list(
        db.session.scalars(
            select(Cylinder)
            .join(ApplicationItem, ApplicationItem.cylinder_id == Cylinder.id)
            .where(ApplicationItem.application_id == application.id)
            .order_by(ApplicationItem.row_no)
        )
    )
    return certificate, cylinders


def pdf_text(certificate: Certificate) -> str:
    assert certificates.render_job(certificate.id) == "rendered"
    db.session.refresh(certificate)
    reader = pypdf.PdfReader(io.BytesIO(certificates.pdf_bytes(certificate)))
    return "".join("".join((page.extract_text() or "").split()) for page in reader.pages)


def notes(certificate: Certificate) -> dict[str, str]:
    return {row.archive_id: row.change for row in certificates.document_for(certificate).cylinders}


def test_a_transfer_issues_new_versions_of_both_certificates_with_transfer_notes(
    client,
    actors,  # noqa: F811
):
    a = actors
    sender_cert, (moving, staying) = certified(a.unit, 2)
    receiver_unit = factories.make_unit("500112")
    receiver_cert, (own,) = certified(receiver_unit, 1)
    receiver_http = a.client_for(factories.make_user(Role.APPLICANT, unit=receiver_unit))
    assert certificates.render_job(sender_cert.id) == "rendered"
    db.session.refresh(sender_cert)
    first_pdf_key = sender_cert.pdf_key

    change = submitted(
        submit(
            a.unit_http,
            "transfer",
            {"product_nos": moving.product_no, "target_credit_code": receiver_unit.credit_code},
        )
    )
    page = receiver_http.get(f"/changes/{change.id}").get_data(as_text=True)
    from .test_change_requests import act

    assert act(receiver_http, change, "receive").status_code == 302
    accept_and_approve(a, change)

    db.session.expire_all()
    sender_cert = db.session.get(Certificate, sender_cert.id)
    receiver_cert = db.session.get(Certificate, receiver_cert.id)
    today = china_today().isoformat()
    # Same numbers, next version, counts follow the cylinders.
    assert (sender_cert.version, sender_cert.cylinder_count) == (2, 1)
    assert (receiver_cert.version, receiver_cert.cylinder_count) == (2, 2)
    assert sender_cert.render_state is RenderState.QUEUED
    assert notes(sender_cert)[moving.id] == f"过户转出 {today}"
    assert notes(sender_cert)[staying.id].startswith("新增")
    assert notes(receiver_cert)[moving.id] == f"过户转入 {today}"
    assert notes(receiver_cert)[own.id].startswith("新增")
    # The same rendering path; the new version's PDF says so.
    text = pdf_text(receiver_cert)
    assert "第2版" in text and "过户转入" in text and moving.product_no in text
    assert "变更或者停用情况" in text
    listed = a.acceptor_http.get("/certificates").get_data(as_text=True)
    assert "第2版" in listed  # 证书打印 shows which version is to be printed
    # The superseded version is kept, its PDF too.
    old = db.session.scalars(
        select(CertificateVersion).where(CertificateVersion.certificate_id == sender_cert.id)
    ).one()
    assert old.version == 1 and old.pdf_key == first_pdf_key and old.change_request_id == change.id
    assert page  # the receiving unit could open the request

    current = client.get(f"/verify/{sender_cert.number}?v=2").get_data(as_text=True)
    assert "有效" in current and "第2版" in current
    superseded = client.get(f"/verify/{sender_cert.number}").get_data(as_text=True)
    assert "已被替代" in superseded and "第1版" in superseded


def test_reissue_issues_the_next_version_marked_reissued(client, actors):  # noqa: F811
    a = actors
    certificate, (cylinder,) = certified(a.unit, 1)
    change = submitted(
        submit(
            a.unit_http,
            "reissue",
            {
                "product_nos": cylinder.product_no,
                "reason": "证书遗失",
                "certificate_no": certificate.number,
            },
        )
    )
    accept_and_approve(a, change)
    db.session.refresh(certificate)
    assert certificate.version == 2 and certificate.reissued
    assert "第2版（补发）" in pdf_text(certificate)
    page = client.get(f"/verify/{certificate.number}?v=2").get_data(as_text=True)
    assert "第2版（补发）" in page


def test_reissue_of_another_units_certificate_is_refused(actors):  # noqa: F811
    a = actors
    _mine, (cylinder,) = certified(a.unit, 1)
    other, _ = certified(factories.make_unit("500112"), 1)
    response = submit(
        a.unit_http,
        "reissue",
        {"product_nos": cylinder.product_no, "reason": "遗失", "certificate_no": other.number},
    )
    page = a.unit_http.get(response.headers["Location"]).get_data(as_text=True)
    assert f"使用登记证{other.number}不是本单位的使用登记证" in page


def test_a_stop_is_shown_on_the_annex_of_the_new_version(actors):  # noqa: F811
    a = actors
    certificate, (stopped, running) = certified(a.unit, 2)
    change = submitted(
        submit(a.unit_http, "suspend", {"product_nos": stopped.product_no, "reason": "停产"})
    )
    accept_and_approve(a, change)
    db.session.refresh(certificate)
    assert certificate.version == 2
    assert notes(certificate)[stopped.id] == f"停用 {china_today().isoformat()}"
    assert notes(certificate)[running.id].startswith("新增")


def test_the_first_version_prints_as_before_without_the_changes_column(app):
    unit = factories.make_unit("500112")
    certificate, _ = certified(unit, 1)
    doc = certificates.document_for(certificate)
    assert doc.edition == "" and not doc.show_changes
    assert "?v=" not in doc.verify_url
