from flask import Blueprint

bp = Blueprint("changes", __name__, url_prefix="/changes")

from . import routes  # noqa: E402, F401
