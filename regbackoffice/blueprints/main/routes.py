from flask import render_template, url_for
from flask_login import current_user, login_required

from ... import inbox
from ...change_workflow import ChangeTask
from ...models import Role
from . import bp


@bp.route("/")
@login_required
def home() -> str:
    """首页: the user's 待办事项 with counts, as in the seed's 首页, then the functions."""
    counts = inbox.task_counts(current_user)

    def link(task: inbox.Task) -> str:
        if current_user.role is Role.APPLICANT:  # her drafts are on 我的申请, 过户 on 变更申请
            if isinstance(task, ChangeTask):
                return url_for("changes.index")
            return url_for("applications.index")
        return url_for("inbox.index", task=task.key)

    # Change-request task kinds (eight per step) are listed only when something waits.
    tasks = [
        (t, counts.get(t.key, 0), link(t))
        for t in inbox.tasks_for(current_user)
        if not isinstance(t, ChangeTask) or counts.get(t.key)
    ]
    return render_template("main/home.html", tasks=tasks)
