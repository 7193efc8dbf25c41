"""Stored photos, served only after the access check (never from static/)."""

from flask import Response, abort, request
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from ... import photo_files
from ...access import get_or_404
from ...models import Attachment
from . import bp


@bp.route("/attachments/<int:attachment_id>/<any(full, thumb, small, side, view):variant>")
@login_required
def attachment(attachment_id: int, variant: str) -> BaseResponse:
    """A photo (or one of its sizes) for anyone whose scope includes its application."""
    photo = get_or_404(Attachment, attachment_id)
    found = photo_files.variant_bytes(photo, variant)
    if found is None:
        abort(404)
    data, mimetype = found
    response = Response(data, mimetype=mimetype)
    # A URL naming the content (?v=) never changes meaning: the browser keeps it (private,
    # never in a shared cache). Without it, the browser asks again (ETag → 304).
    current = request.args.get("v") == photo_files.version(photo)
    response.headers["Cache-Control"] = (
        photo_files.CACHE_FOREVER if current else photo_files.REVALIDATE
    )
    response.set_etag(f"{photo.sha256}-{variant}")
    return response.make_conditional(request)
