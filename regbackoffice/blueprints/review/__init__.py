from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/bureau/applications")

from . import routes  # noqa: E402, F401
