from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import calendar_routes, routes  # noqa: E402, F401
