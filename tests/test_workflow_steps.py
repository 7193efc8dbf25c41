"""The table of steps: who acts on an application in each state, and by when."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from regbackoffice import workflow
from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    ApplicationStatus,
    AttachmentKind,
    AuditVerdict,
    Role,
)

from . import factories
from .conftest import post_form

S = ApplicationStatus


def test_every_open_state_has_one_task_and_final_states_none():
    owners = {status: workflow.open_step(status) for status in ApplicationStatus}
    assert {s: (t.role, t.label) for s, t in owners.items() if t} == {
        S.DRAFT: (Role.APPLICANT, "提交申请"),
        S.RETURNED: (Role.APPLICANT, "补正"),
        S.SUBMITTED: (Role.ACCEPTOR, "受理"),
        S.ACCEPTED: (Role.REVIEWER, "审核"),
        S.REVIEWED: (Role.APPROVER, "审批"),
        S.APPROVED: (Role.ACCEPTOR, "证书生成"),
    }
    assert owners[S.CERTIFIED] is None and owners[S.VOIDED] is None


def test_deadlines_and_voiding_follow_the_table():
    assert {s.key: s.deadline_field for s in workflow.TASKS} == {
        "submit": None,
        "correct": None,
        "accept": "accept_due_on",
        "review": "decision_due_on",
        "approve": "decision_due_on",
        "certify": None,
    }
    assert workflow.VOID_STEP_BY_ROLE == {
        Role.ACCEPTOR: S.SUBMITTED,
        Role.REVIEWER: S.ACCEPTED,
        Role.APPROVER: S.REVIEWED,
    }
    assert [t.key for t in workflow.tasks_for(Role.ACCEPTOR)] == ["accept", "certify"]
    assert workflow.WITHDRAW_STATUSES == (S.RETURNED,)  # the applicant's 撤回申请


def test_overdue_is_judged_by_the_open_step_deadline():
    application = factories.make_accepted_application()
    day_after = application.decision_due_on + timedelta(days=1)
    assert not workflow.is_overdue(application, application.decision_due_on)
    assert workflow.is_overdue(application, day_after)

    def overdue_ids(deadline_field=None):
        clause = workflow.overdue_clause(day_after, deadline_field)
        return db.session.scalars(select(Application.id).where(clause)).all()

    assert application.id in overdue_ids()
    # Its 受理 deadline is long past too, but 受理 is done: only the open step counts.
    assert application.id not in overdue_ids("accept_due_on")


def test_submission_from_a_stale_page_is_refused_and_stays_draft(client, login_as):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application)
    factories.make_photo(item, AttachmentKind.STAMP, uploaded_by=applicant)
    factories.make_photo(item, AttachmentKind.SUPERVISION_CERTIFICATE, uploaded_by=applicant)
    stale_version = application.version_id - 1
    response = post_form(
        client,
        f"/applications/{application.id}/submit",
        {"version": stale_version},
        page="/applications/",
    )
    assert response.status_code == 409
    db.session.refresh(application)
    assert application.status is S.DRAFT


def test_completing_the_audit_from_a_stale_page_keeps_the_saved_verdicts(client, login_as):
    application = factories.make_submitted_application(items=1)
    login_as(Role.ACCEPTOR, district_code=application.district_code)
    (item,) = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).all()
    url = f"/bureau/applications/{application.id}/audit"
    response = post_form(
        client,
        url,
        {
            "version": application.version_id + 5,  # the application changed meanwhile
            "item": [str(item.id)],
            f"rev-{item.id}": "0",
            f"verdict-{item.id}": "correct",
            "action": "finish",
        },
        page=url,
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "本页审核结果已保存，但未能完成审核" in page
    db.session.refresh(item)
    db.session.refresh(application)
    assert item.audit_verdict is AuditVerdict.CORRECT
    assert application.audit_completed_at is None


def test_the_workflow_page_in_docs_says_what_the_table_says():
    page = (Path(__file__).resolve().parents[1] / "docs" / "workflow.md").read_text("utf-8")
    rows = {
        cells[0]: cells
        for line in page.splitlines()
        if line.startswith("| ") and not line.startswith("| state")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for status in ApplicationStatus:
        state, label, role, _step, due, voids, withdraws = rows[status.value]
        assert label == status.label
        step = workflow.open_step(status)
        if step is None:
            assert role.startswith("nobody"), state
            continue
        assert role == step.role.value, state
        assert due == (step.deadline_field or "—"), state
        assert voids == ("yes" if step.status in workflow.VOID_STEP_BY_ROLE.values() else "no")
        assert withdraws == ("yes" if step.status in workflow.WITHDRAW_STATUSES else "no")
