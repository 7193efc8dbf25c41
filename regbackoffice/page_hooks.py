"""The pages' request hooks run for every request but the JSON API's.

Flask runs an app-wide hook (``before_request``, ``after_request``, ``teardown_request``)
for every request. Most of this app's are the pages': CSRF (Flask-WTF), the page rate
limits and their headers (Flask-Limiter), the remember-me cookie (Flask-Login), read-only
users, the forced password change, NUL characters in forms. The API authenticates its
clients by token and checks its own bodies, so for it they only returned early, at
≈ 70 µs of CPU a call (a tenth of an interlock check's).

So every request outside the API is in one more scope, ``PAGES``, as if all of the
pages' blueprints (and the requests of no blueprint: a static file, a 404) were nested in
one parent blueprint of that name, and ``confine_to_pages`` moves the app-wide hooks
there once the app is built. Flask runs a parent's hooks where it ran the app-wide ones:
before the blueprint's own before a request, after the blueprint's own after it (the
app-wide ones left, the request's commit and the hardening headers, then run last).

A hook that the API needs too is marked ``app_wide`` and stays app-wide; so does one
registered after ``confine_to_pages`` ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request

API_BLUEPRINT = "api"
# Not a blueprint: the name of the scope every request outside the API is in.
PAGES = "regbackoffice-pages"

_HOOK_REGISTRIES = ("before_request_funcs", "after_request_funcs", "teardown_request_funcs")
_APP_WIDE: set[Callable[..., Any]] = set()

Hook = TypeVar("Hook", bound=Callable[..., Any])


def app_wide(hook: Hook) -> Hook:
    """Mark a hook that every request needs, the API's too (it stays app-wide)."""
    _APP_WIDE.add(hook)
    return hook


class ScopedRequest(Request):
    """A request whose blueprints end with ``PAGES`` unless it is the API's."""

    @property
    def blueprints(self) -> list[str]:
        names = super().blueprints
        if names and names[-1] == API_BLUEPRINT:
            return names
        return [*names, PAGES]


def confine_to_pages(app: Flask) -> None:
    """Move every app-wide hook not marked ``app_wide`` into the ``PAGES`` scope."""
    app.request_class = ScopedRequest
    for registry_name in _HOOK_REGISTRIES:
        registry: dict[str | None, list[Callable[..., Any]]] = getattr(app, registry_name)
        hooks = registry.get(None, [])
        registry[PAGES] = [*registry.get(PAGES, []), *(h for h in hooks if h not in _APP_WIDE)]
        registry[None] = [hook for hook in hooks if hook in _APP_WIDE]
