"""``/healthz`` for the load balancer and monitoring: no login, no rate limit, JSON."""

from __future__ import annotations

from flask import Response, jsonify, request

from ... import health
from ...extensions import limiter
from . import bp


@bp.route("/healthz")
@limiter.exempt
def healthz() -> tuple[Response, int]:
    """200 when healthy, 503 when not; ``?scope=web`` checks only what pages need."""
    healthy, body = health.report(request.args.get("scope", "all"))
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if healthy else 503
