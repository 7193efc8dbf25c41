"""Turning a domain refusal into a response, the same way in every blueprint."""

from __future__ import annotations

from flask import abort, flash, g, redirect
from werkzeug.wrappers import Response

from ..domain_errors import DomainError


def refuse(exc: DomainError, back_to: str, *, prefix: str = "") -> Response:
    """Show the refusal and go back to ``back_to``; nothing the operation changed commits.

    A 409 (the page was stale: another clerk, a double click) answers with the conflict
    page instead, which tells the user to reload.
    """
    g.rollback_only = True  # transaction._finish rolls back instead of committing
    if exc.status_code == 409:
        abort(409, description=exc.message)
    flash(prefix + exc.message, "danger")
    return redirect(back_to)
