"""The Alembic history: one head, upgrades from empty, matches the models, downgrades."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from regbackoffice import create_app
from regbackoffice.extensions import db

from .conftest import TEST_DATABASE_URL, make_test_config, recreate_database

_TEST_URL = sa.make_url(TEST_DATABASE_URL)
MIGRATION_DB_URL = _TEST_URL.set(database=f"{_TEST_URL.database}_migrations")


@pytest.fixture
def empty_database_app(tmp_path_factory):
    url = MIGRATION_DB_URL.render_as_string(hide_password=False)
    recreate_database(url)
    app = create_app(make_test_config(tmp_path_factory, url))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_migrations_have_one_head_and_match_the_models(empty_database_app):
    with empty_database_app.app_context():
        script = ScriptDirectory.from_config(
            empty_database_app.extensions["migrate"].migrate.get_config()
        )
        assert len(script.get_heads()) == 1
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            assert diff == [], f"models and migrations differ: {diff}"
            assert conn.execute(sa.text("SELECT count(*) FROM districts")).scalar() == 42


def test_migrations_downgrade_to_empty_and_upgrade_again(empty_database_app):
    with empty_database_app.app_context():
        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        assert tables == ["alembic_version"]
        upgrade()


def test_migrations_depend_on_no_code_or_data_of_the_package():
    """An old migration must mean the same thing forever: it may not import today's code."""
    import ast
    from pathlib import Path

    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    for path in sorted(versions.glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(("regbackoffice", "importlib")), (path.name, name)
        assert "please adjust" not in path.read_text("utf-8"), path.name


_OLD_FAILED_ROWS = [  # as 0002–0023 stored them: one JSON value, lost rows sorted in
    {"row": 3, "values": ["2320", "MIG-3", "G13"], "reasons": ["容积(L)“abc”不是数字"]},
    {"row": 7, "values": ["=1+1", "MIG-7"], "reasons": ["a", "第二个原因"]},
    {"row": 12, "values": [], "reasons": ["该气瓶已登记"]},
]


def _sqlite_app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite-0024') / 'demo.db'}"
    return create_app(make_test_config(tmp_path_factory, url))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migration_0024_moves_the_refused_rows_of_earlier_imports_to_their_table_and_back(
    backend, empty_database_app, tmp_path_factory
):
    import json

    from . import factories

    app = empty_database_app if backend == "postgresql" else _sqlite_app(tmp_path_factory)
    test_session = db.session  # the test transaction's session: set aside for this test
    with app.app_context():
        db.session = sa.orm.scoped_session(sa.orm.sessionmaker(bind=db.engine))
        try:
            upgrade(revision="0023")
            application = factories.make_application()
            db.session.commit()
            job_ids = []
            for failed_rows in (_OLD_FAILED_ROWS, []):
                job_ids.append(
                    db.session.execute(
                        sa.text(
                            "INSERT INTO import_jobs (application_id, status, original_name,"
                            " total_rows, imported_count, failed_count, hidden_rows, failed_rows,"
                            " created_by_id, created_at) VALUES (:app, 'done', 'old.xlsx', 20,"
                            " 17, :failed, 0, :rows, :user, CURRENT_TIMESTAMP) RETURNING id"
                        ),
                        {
                            "app": application.id,
                            "user": application.created_by_id,
                            "failed": len(failed_rows),
                            "rows": json.dumps(failed_rows, ensure_ascii=False),
                        },
                    ).scalar_one()
                )
            db.session.commit()

            upgrade()
            from regbackoffice.imports import refused

            assert list(refused.every(job_ids[0])) == _OLD_FAILED_ROWS
            assert list(refused.every(job_ids[1])) == []
            assert "failed_rows" not in {
                c["name"] for c in sa.inspect(db.engine).get_columns("import_jobs")
            }
            db.session.commit()

            downgrade(revision="0023")
            back = db.session.execute(
                sa.text("SELECT id, failed_rows FROM import_jobs ORDER BY id")
            ).all()
            assert [(id_, json.loads(v) if isinstance(v, str) else v) for id_, v in back] == [
                (job_ids[0], _OLD_FAILED_ROWS),
                (job_ids[1], []),
            ]
            db.session.commit()
        finally:
            db.session.rollback()
            db.session.remove()
            db.session = test_session
            db.engine.dispose()
