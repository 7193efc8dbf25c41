"""An applicant typing another enterprise's name and credit code (issue 15).

The bureau sees both the typed and the registered values; the certificate and the archive
keep the registered ones unless an acceptor confirms the change (audited, with a reason).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from regbackoffice import certificates, unit_identity
from regbackoffice.extensions import db
from regbackoffice.models import AuditLog, Certificate, Cylinder, Role

from . import factories
from .conftest import csrf_token_from
from .test_certificates import generate

TYPED_NAME = "重庆别家能源集团有限公司"


@pytest.fixture
def impostor():
    """Approved, filed by unit A, but naming another (also registered) enterprise."""
    own = factories.make_unit("500112", name="重庆本家燃气有限公司")
    other = factories.make_unit("500112", name=TYPED_NAME)
    application = factories.make_approved_application(own, items=2)
    application.unit_name = other.name
    application.credit_code = other.credit_code
    db.session.flush()
    return application, own, other


def detail(client, application) -> str:
    return client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)


def confirm(client, application, **form):
    page = detail(client, application)
    db.session.refresh(application)
    data = {
        "csrf_token": csrf_token_from(page),
        "version": application.version_id,
        "reason": "已核验营业执照：本家燃气已并入别家能源集团",
        "confirm": "y",
        **form,
    }
    return client.post(f"/bureau/applications/{application.id}/identity", data=data)


def certificate_of(application) -> Certificate:
    return db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )


def test_the_clerk_sees_typed_and_registered_unit_side_by_side(client, login_as, impostor):
    application, own, other = impostor
    login_as(Role.ACCEPTOR, district_code="500112")
    page = detail(client, application)
    assert "申请填写的单位信息与登记的申请单位不一致" in page
    assert other.credit_code in page and own.credit_code in page
    assert TYPED_NAME in page and own.name in page
    assert "未经确认，证书和档案使用" in page and "确认单位信息变更" in page


def test_reviewers_see_the_difference_but_cannot_confirm(app, client, login_as, impostor):
    application, _own, _other = impostor
    login_as(Role.REVIEWER, district_code="500112")
    page = detail(client, application)
    assert "申请填写的单位信息与登记的申请单位不一致" in page
    assert "确认单位信息变更</button>" not in page
    assert confirm(client, application).status_code == 403


def test_no_warning_when_the_application_names_its_own_unit(client, login_as):
    application = factories.make_approved_application(items=1)
    login_as(Role.ACCEPTOR, district_code="500112")
    assert "不一致" not in detail(client, application)
    assert unit_identity.differences(application) == []


def test_unconfirmed_certificate_and_archive_keep_the_registered_unit(client, login_as, impostor):
    application, own, _other = impostor
    login_as(Role.ACCEPTOR, district_code="500112")
    assert generate(client, application).status_code == 302
    document = certificates.document_for(certificate_of(application))
    assert (document.unit_name, document.credit_code) == (own.name, own.credit_code)
    names = db.session.scalars(
        select(Cylinder.use_unit_name).where(Cylinder.application_id == application.id)
    ).all()
    assert names and set(names) == {own.name}


def test_a_confirmed_change_goes_on_the_certificate_and_is_audited(client, login_as, impostor):
    application, own, other = impostor
    clerk = login_as(Role.ACCEPTOR, district_code="500112")
    assert confirm(client, application).status_code == 302
    db.session.refresh(application)
    assert unit_identity.is_confirmed(application)
    [row] = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "unit_identity_confirmed")
    ).all()
    assert row.actor_id == clerk.id and row.object_id == str(application.id)
    assert row.detail["credit_code_typed"] == other.credit_code
    assert row.detail["credit_code_registered"] == own.credit_code
    assert row.detail["name_typed"] == TYPED_NAME and "营业执照" in row.detail["reason"]
    assert "已由受理人员确认变更" in detail(client, application)
    assert generate(client, application).status_code == 302
    document = certificates.document_for(certificate_of(application))
    assert (document.unit_name, document.credit_code) == (TYPED_NAME, other.credit_code)


def test_confirmation_needs_a_reason_and_the_tick(client, login_as, impostor):
    application, _own, _other = impostor
    login_as(Role.ACCEPTOR, district_code="500112")
    assert confirm(client, application, reason="").status_code == 302
    assert "请填写确认理由" in detail(client, application)
    assert confirm(client, application, confirm="").status_code == 302
    assert "请勾选确认" in detail(client, application)
    db.session.refresh(application)
    assert not unit_identity.is_confirmed(application)
    assert (
        db.session.scalar(select(AuditLog).where(AuditLog.action == "unit_identity_confirmed"))
        is None
    )


def test_an_edit_after_the_confirmation_is_not_covered_by_it(impostor):
    application, own, _other = impostor
    clerk = factories.make_user(Role.ACCEPTOR, district_code="500112")
    unit_identity.confirm_change(application, clerk, "已核验", application.version_id)
    application.unit_name = "又一家公司"
    db.session.flush()
    assert not unit_identity.is_confirmed(application)
    assert unit_identity.certificate_identity(application) == (own.name, own.credit_code)


def test_nothing_to_confirm_is_refused_with_a_reason():
    from regbackoffice.workflow import WorkflowError

    application = factories.make_approved_application(items=1)
    clerk = factories.make_user(Role.ACCEPTOR, district_code="500112")
    with pytest.raises(WorkflowError, match="无需确认"):
        unit_identity.confirm_change(application, clerk, "x", application.version_id)
