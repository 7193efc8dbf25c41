from flask import abort, current_app, render_template, request
from flask_login import current_user

from ... import change_workflow, inbox
from ...access import roles_required
from ...change_workflow import ChangeTask
from ...clock import china_today
from ...extensions import db
from ...models import Role
from . import bp

PER_PAGE = 20


@bp.route("/inbox")
@roles_required(Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER)
def index() -> str:
    tasks = inbox.tasks_for(current_user)
    counts = inbox.task_counts(current_user)
    key = request.args.get("task") or tasks[0].key
    task = next((t for t in tasks if t.key == key), None)
    if task is None:
        abort(404)
    search = request.args.get("q", "")
    if isinstance(task, ChangeTask):
        query = inbox.change_task_query(current_user, task, search)
    else:
        query = inbox.task_query(current_user, task, search)  # type: ignore[assignment]
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    today = china_today()
    rows = [(a, inbox.due_date(a, task), inbox.days_left(a, task, today)) for a in page.items]
    notice_warnings = (
        inbox.correction_notice_warnings(
            page.items, today, current_app.config["CORRECTION_NOTICE_LIMIT_WORKDAYS"]
        )
        if task.key == "accept"
        else {}
    )
    return render_template(
        "inbox/index.html",
        tasks=tasks,
        counts=counts,
        task=task,
        page=page,
        rows=rows,
        q=search,
        change_task=isinstance(task, ChangeTask),
        notice_warnings=notice_warnings,
        # 判废 records that arrived while a listed change request held the cylinder.
        held=change_workflow.held_scrap_records([c.id for c in page.items])
        if isinstance(task, ChangeTask)
        else {},
    )
