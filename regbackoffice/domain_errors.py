"""The one base class of every refusal a domain operation can give.

A refusal carries its Chinese message (which value, why, what to do) and the HTTP status a
view should answer with. Views turn it into a response with ``blueprints.refuse``, which
also marks the request for rollback, so a refused operation never commits half its work.
"""

from __future__ import annotations


class DomainError(ValueError):
    """An operation the rules refuse; ``message`` is shown to the user."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
