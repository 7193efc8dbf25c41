"""Stored photos, served only after the access check (never from static/)."""

from flask import Response, abort
from flask_login import login_required

from ... import storage
from ...access import get_or_404
from ...models import Attachment
from . import bp


@bp.route("/attachments/<int:attachment_id>/<any(full, thumb):variant>")
@login_required
def attachment(attachment_id: int, variant: str) -> Response:
    """A photo (or its thumbnail) for anyone whose scope includes its application."""
    photo = get_or_404(Attachment, attachment_id)
    key = photo.storage_key if variant == "full" else photo.thumbnail_key
    if not storage.exists(key):
        abort(404)
    # Read through the storage interface (works for any backend; photos are at most 10 MB).
    mimetype = photo.content_type if variant == "full" else "image/jpeg"
    response = Response(storage.read(key), mimetype=mimetype)
    response.headers["Cache-Control"] = "private, no-store"  # shared office PCs
    return response
