"""Stored photos, served only after the access check (never from static/)."""

from flask import abort, send_file
from flask_login import login_required
from werkzeug.wrappers import Response

from ... import storage
from ...access import get_or_404
from ...models import Attachment
from . import bp


@bp.route("/attachments/<int:attachment_id>/<any(full, thumb):variant>")
@login_required
def attachment(attachment_id: int, variant: str) -> Response:
    photo = get_or_404(Attachment, attachment_id)
    key = photo.storage_key if variant == "full" else photo.thumbnail_key
    if not storage.exists(key):
        abort(404)
    response = send_file(
        storage.local_path(key),
        mimetype=photo.content_type if variant == "full" else "image/jpeg",
        max_age=3600,
        conditional=True,
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
