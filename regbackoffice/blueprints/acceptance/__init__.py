from flask import Blueprint

bp = Blueprint("acceptance", __name__, url_prefix="/bureau/applications")

from . import correction, identity, routes  # noqa: E402, F401
