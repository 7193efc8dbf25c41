from flask import Blueprint

bp = Blueprint("archive", __name__)

from . import routes  # noqa: E402, F401
