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
