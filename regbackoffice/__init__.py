"""regbackoffice: the regulator's back office for Chongqing's gas-cylinder use registration."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask


class RegBackofficeFlask(Flask):
    """Flask, remembering which of its functions need no async wrapper.

    Flask asks ``ensure_sync`` of every hook and view on every request, and each answer
    costs ``inspect.iscoroutinefunction`` (14 times an interlock check, ≈ 20 µs of its CPU).
    The answer cannot change for a given function: it is kept. (The app has no async views;
    one would still be wrapped, once.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync_functions[func]
        except KeyError:
            synced = self._sync_functions[func] = super().ensure_sync(func)
            return synced
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides what the ``REGBO_*`` environment gives.

    No database query runs here: the app can be built before the database exists.
    """
    from . import (  # noqa: F401
        access,
        cli,
        cylinder_changes,
        errors,
        health,
        page_hooks,
        security,
        transaction,
        ui,
    )
    from .config import load_config
    from .extensions import check_page_limits, csrf, db, limiter, login_manager, migrate

    app = RegBackofficeFlask(__name__, instance_relative_config=True)
    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    if not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
        from .extensions import ping_when_idle

        with app.app_context():  # builds the engine object only: no connection is made
            ping_when_idle(db.engine.pool, app.config.get("DB_PING_AFTER_IDLE_SECONDS", 5.0))
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    # Rate limits (public pages) count per address in Redis when there is one, so every
    # app server sees the same counts; if Redis is away the pages stay up (memory fallback).
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "regbo-limit")
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
    app.before_request(check_page_limits)

    transaction.init_app(app)
    access.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    ui.init_app(app)
    health.init_app(app)
    cli.init_app(app)

    from .blueprints.acceptance import bp as acceptance_bp
    from .blueprints.admin import bp as admin_bp
    from .blueprints.api import bp as api_bp
    from .blueprints.applications import bp as applications_bp
    from .blueprints.archive import bp as archive_bp
    from .blueprints.auth import bp as auth_bp
    from .blueprints.certificates import bp as certificates_bp
    from .blueprints.changes import bp as changes_bp
    from .blueprints.files import bp as files_bp
    from .blueprints.health import bp as health_bp
    from .blueprints.inbox import bp as inbox_bp
    from .blueprints.main import bp as main_bp
    from .blueprints.public import bp as public_bp
    from .blueprints.review import bp as review_bp
    from .blueprints.supervision import bp as supervision_bp

    app.register_blueprint(acceptance_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(archive_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(certificates_bp)
    app.register_blueprint(changes_bp)
    app.register_blueprint(files_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(supervision_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(applications_bp)
    page_hooks.confine_to_pages(app)
    return app
