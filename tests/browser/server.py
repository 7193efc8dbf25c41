"""The app served for the browser journeys, in its own process on a committed database.

Run as ``python -m tests.browser_server``: it migrates the database in ``REGBO_DATABASE_URL``,
loads the demo data (``seed-demo``) and commits, then serves on 127.0.0.1 at a free port and
prints ``PORT <n>`` once it listens. ``REGBO_REDIS_URL`` is left unset, so jobs (certificate
rendering, large imports) run inline after the commit, exactly as in the demo.

A separate process keeps the server away from the test process's rolled-back transaction
and its warnings-as-errors filter: the browser sees the app as a user would.
"""

from __future__ import annotations

import sys

from flask_migrate import upgrade
from werkzeug.serving import make_server

from regbackoffice import create_app, demo
from regbackoffice.extensions import db

DEMO_PASSWORD = "browser-pass-2026"


def main() -> None:
    app = create_app()
    with app.app_context():
        upgrade()
        demo.seed_demo(DEMO_PASSWORD)
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # SIGINT from the fixture: stop quietly
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
