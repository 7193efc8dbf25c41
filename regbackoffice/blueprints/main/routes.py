from flask import render_template
from flask_login import current_user, login_required

from ... import inbox
from ...models import Role
from . import bp


@bp.route("/")
@login_required
def home() -> str:
    """首页: the user's 待办事项 with counts, as in the seed's 首页, then the functions."""
    tasks = inbox.tasks_for(current_user)
    counts = inbox.task_counts(current_user)
    return render_template(
        "main/home.html",
        tasks=[(task, counts.get(task.key, 0)) for task in tasks],
        task_page="applications.index" if current_user.role is Role.APPLICANT else "inbox.index",
    )
