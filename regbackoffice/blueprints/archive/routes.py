"""气瓶档案: the list (search, filters, keyset pages), its .xlsx export and one cylinder's page.

Every route reads through ``cylinder_archive`` (scoped by ``access.visible``): a unit's
applicant sees its own cylinders, district clerks their district's, city supervisors all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ... import audit, cylinder_archive
from ...access import get_or_404, roles_required, visible
from ...clock import china_today
from ...exports import XLSX_MIMETYPE
from ...extensions import db
from ...models import Application, Cylinder, CylinderStatus, Role
from . import bp

ARCHIVE_ROLES = (Role.APPLICANT, Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER, Role.SUPERVISOR)


@bp.route("/archive/")
@roles_required(*ARCHIVE_ROLES)
def index() -> str:
    user = current_user._get_current_object()
    filt, notes = cylinder_archive.parse_filter(request.args, user)
    today = china_today()
    page = cylinder_archive.page(
        user,
        filt,
        after=request.args.get("after", ""),
        before=request.args.get("before", ""),
        today=today,
    )
    return render_template(
        "archive/index.html",
        page=page,
        filt=filt,
        filter_args=filt.query_args(),
        notes=notes,
        statuses=list(CylinderStatus),
        due_choices=cylinder_archive.DUE_CHOICES,
        units=cylinder_archive.unit_choices(user, filt.district_code),
        districts=cylinder_archive.district_choices(user),
        district_names=cylinder_archive.district_names() if user.role is not Role.APPLICANT else {},
        due_of={c.id: cylinder_archive.due_state(c, today) for c in page.items},
        export_cap=cylinder_archive.EXPORT_ROW_CAP,
        # Only the unit selects cylinders: the change applications act on a unit's own.
        selectable=user.role is Role.APPLICANT,
    )


@bp.route("/archive/export.xlsx")
@roles_required(*ARCHIVE_ROLES)
def export() -> ResponseReturnValue:
    user = current_user._get_current_object()
    filt, _notes = cylinder_archive.parse_filter(request.args, user)
    result = cylinder_archive.export_xlsx(user, filt)
    audit.record(
        "export",
        object_type="cylinders",
        object_id=user.scope_label[:50],
        filter=result.description,
        rows=result.rows,
    )
    response = Response(_chunks(result.file), mimetype=XLSX_MIMETYPE)
    # Header values are latin-1 on the wire: the Chinese name goes percent-encoded (RFC 6266).
    response.headers["Content-Disposition"] = (
        f"attachment; filename=cylinders.xlsx; filename*=UTF-8''{quote(result.filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    """The spooled export file in pieces, closed when sent (or the client went away)."""
    try:
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


@bp.route("/archive/cylinders/<cylinder_id>")
@roles_required(*ARCHIVE_ROLES)
def detail(cylinder_id: str) -> str:
    cylinder = get_or_404(Cylinder, cylinder_id[:50])
    v = cylinder_archive.view(cylinder)
    application_url = None
    # The registration application (and its certificate PDF) only when the user may open it:
    # after a 过户 it belongs to the old unit.
    if v.application is not None and db.session.scalar(
        visible(Application).where(Application.id == v.application.id)
    ):
        endpoint = (
            "applications.show" if current_user.role is Role.APPLICANT else "acceptance.detail"
        )
        application_url = url_for(endpoint, application_id=v.application.id)
    return render_template(
        "archive/detail.html",
        v=v,
        application_url=application_url,
        due_choices=cylinder_archive.DUE_CHOICES,
    )
