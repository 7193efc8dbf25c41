"""JSON API v1 for enterprise platforms (DESIGN 8): POST only, JSON only, the envelope."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import routes  # noqa: E402, F401
