"""The whole registration, draft to certified, through the web client as each role."""

import io
import re

from pypdf import PdfReader
from rq import Queue, SimpleWorker
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    Certificate,
    Cylinder,
    RenderState,
    Role,
)

from . import factories
from .conftest import csrf_token_from, login, version_from
from .test_images import jpeg_bytes
from .xlsx_helpers import good_row, workbook_bytes


def _token(client, url: str) -> str:
    return csrf_token_from(client.get(url).get_data(as_text=True))


def _done(response):
    """Read and close (the test client keeps an upload's temp file open until then)."""
    response.get_data()
    response.close()
    response.request.input_stream.close()
    return response


def test_draft_to_certified_through_the_web(app, redis_conn):
    unit = factories.make_unit("500112", name="全流程燃气有限公司")
    people = {
        role: factories.make_user(
            role, district_code="500112", unit=unit if role is Role.APPLICANT else None
        )
        for role in (Role.APPLICANT, Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER)
    }
    clients = {role: app.test_client() for role in people}
    for role, client in clients.items():
        assert login(client, people[role]).status_code == 302

    # 使用单位: create, import three cylinders, upload photos, submit.
    applicant = clients[Role.APPLICANT]
    form_page = applicant.get("/applications/new").get_data(as_text=True)
    fields = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form_page))
    fields.update({"csrf_token": csrf_token_from(form_page), "district_code": "500112"})
    created = applicant.post("/applications/new", data=fields)
    assert created.status_code == 302, created.get_data(as_text=True)
    application = db.session.scalar(select(Application).where(Application.unit_id == unit.id))
    rows = [good_row(f"FLOW-{n}") for n in range(1, 4)]
    imported = applicant.post(
        f"/applications/{application.id}/import",
        data={
            "csrf_token": _token(applicant, f"/applications/{application.id}"),
            "file": (io.BytesIO(workbook_bytes(rows)), "cylinders.xlsx"),
        },
        content_type="multipart/form-data",
    )
    _done(imported)
    items = db.session.scalars(
        select(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()
    assert [i.product_no for i in items] == ["FLOW-1", "FLOW-2", "FLOW-3"]
    for item in items:
        for kind in ("stamp", "supervision_certificate"):
            url = f"/applications/{application.id}/items/{item.id}/photos"
            response = applicant.post(
                url,
                data={
                    "csrf_token": _token(applicant, url),
                    "kind": kind,
                    "file": (io.BytesIO(jpeg_bytes()), "p.jpg"),
                },
                content_type="multipart/form-data",
            )
            assert _done(response).status_code == 302
    show_page = applicant.get(f"/applications/{application.id}").get_data(as_text=True)
    submitted = applicant.post(
        f"/applications/{application.id}/submit",
        data={"csrf_token": csrf_token_from(show_page), "version": version_from(show_page)},
    )
    assert submitted.status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED

    # 受理人员: inbox, attachment audit (FLOW-2 错误), 完成, 受理.
    acceptor = clients[Role.ACCEPTOR]
    assert application.number in acceptor.get("/inbox").get_data(as_text=True)
    pager = f"/bureau/applications/{application.id}/audit"
    html = acceptor.get(pager).get_data(as_text=True)
    data = {
        "csrf_token": csrf_token_from(html),
        "version": version_from(html),
        "item": [],
        "action": "finish",
    }
    for item in items:
        data["item"].append(str(item.id))
        data[f"rev-{item.id}"] = "0"
        data[f"verdict-{item.id}"] = "wrong" if item.product_no == "FLOW-2" else "correct"
        data[f"note-{item.id}"] = "钢印与产品编号不符" if item.product_no == "FLOW-2" else ""
    assert acceptor.post(pager + "?page=1&size=10", data=data).status_code == 302
    detail = f"/bureau/applications/{application.id}"

    def decide(client, action):
        page = client.get(detail).get_data(as_text=True)
        db.session.refresh(application)
        response = client.post(
            f"{detail}/{action}",
            data={"csrf_token": csrf_token_from(page), "version": application.version_id},
        )
        assert response.status_code == 302, response.get_data(as_text=True)

    decide(acceptor, "accept")
    decide(clients[Role.REVIEWER], "review")
    decide(clients[Role.APPROVER], "approve")
    decide(acceptor, "certificate")
    SimpleWorker(
        [Queue(app.config["RQ_QUEUE"], connection=redis_conn)], connection=redis_conn
    ).work(burst=True)

    db.session.refresh(application)
    assert application.status is ApplicationStatus.CERTIFIED
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )
    assert certificate.render_state is RenderState.READY and certificate.cylinder_count == 2
    archive = db.session.scalars(
        select(Cylinder.product_no).where(Cylinder.application_id == application.id)
    ).all()
    assert sorted(archive) == ["FLOW-1", "FLOW-3"]

    # 使用单位 sees the certificate and the excluded cylinder with the clerk's note.
    progress = applicant.get(f"/applications/{application.id}/progress").get_data(as_text=True)
    assert (
        certificate.number in progress and "钢印与产品编号不符" in progress and "FLOW-2" in progress
    )
    with applicant.get(f"/certificates/{certificate.id}/download") as pdf:
        text = re.sub(
            r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
        )
    assert (
        "全流程燃气有限公司" in text
        and "FLOW-1" in text
        and "FLOW-3" in text
        and "FLOW-2" not in text
    )
