"""One error path: a refused operation shows its message and commits nothing it changed."""

from flask import get_flashed_messages
from sqlalchemy import select

from regbackoffice.blueprints.refusal import refuse
from regbackoffice.domain_errors import DomainError
from regbackoffice.extensions import db
from regbackoffice.models import Unit
from regbackoffice.workflow import StaleApplication, WorkflowError

from . import factories


def _rename_in_a_request(app, unit_id: int, then) -> int:
    """Rename a unit inside a POST request, answer with ``then()``; returns the status."""
    with app.test_request_context("/", method="POST"):
        db.session.get(Unit, unit_id).name = "改过的名字"
        db.session.flush()  # a half-made change, as an operation would leave it
        response = app.process_response(then())  # runs the request's commit/rollback
        return response.status_code


def _name(unit_id: int) -> str:
    return db.session.scalar(select(Unit.name).where(Unit.id == unit_id))


def test_refused_operation_rolls_back_what_it_flushed_and_flashes_why(app):
    unit_id = factories.make_unit(name="原来的名字").id
    messages: list[str] = []

    def refused():
        response = refuse(DomainError("统一社会信用代码校验位不正确"), "/back")
        messages.extend(get_flashed_messages())
        return response

    assert _rename_in_a_request(app, unit_id, refused) == 302
    assert messages == ["统一社会信用代码校验位不正确"]
    assert _name(unit_id) == "原来的名字"


def test_a_successful_redirect_commits_the_same_change(app):
    unit_id = factories.make_unit(name="原来的名字").id
    assert _rename_in_a_request(app, unit_id, lambda: app.redirect("/done")) == 302
    assert _name(unit_id) == "改过的名字"


def test_a_stale_page_refusal_answers_409_with_its_message(app):
    with app.test_request_context("/", method="POST"):
        try:
            refuse(StaleApplication("该申请已被处理"), "/back")
        except Exception as exc:  # werkzeug's Conflict
            assert exc.code == 409 and exc.description == "该申请已被处理"
        else:
            raise AssertionError("a stale refusal must abort with 409")


def test_every_domain_refusal_shares_the_base_and_its_status():
    assert issubclass(WorkflowError, DomainError)
    assert StaleApplication("x").status_code == 409
    assert DomainError("x", 422).status_code == 422
