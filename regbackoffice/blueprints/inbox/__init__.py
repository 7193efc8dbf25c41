from flask import Blueprint

bp = Blueprint("inbox", __name__)

from . import routes  # noqa: E402, F401
