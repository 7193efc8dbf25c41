from flask import Blueprint

bp = Blueprint("supervision", __name__, url_prefix="/supervision")

from . import routes  # noqa: E402, F401
