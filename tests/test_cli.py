import json
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from regbackoffice import change_workflow
from regbackoffice.extensions import db
from regbackoffice.models import ApiClient, ChangeKind, ChangeRequest, Cylinder, Unit, User

from . import factories


def _counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (User, Unit, ApiClient, Cylinder)
    }


def test_seed_demo_is_idempotent_and_writes_the_documented_json(app, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "demo.json"
    first = runner.invoke(args=["seed-demo", "--password", "demo-pass-1", "--json-out", str(out)])
    assert first.exit_code == 0, first.output
    counts = _counts()
    again = runner.invoke(args=["seed-demo", "--password", "demo-pass-1", "--json-out", str(out)])
    assert again.exit_code == 0, again.output
    assert _counts() == counts

    summary = json.loads(out.read_text("utf-8"))
    assert set(summary) == {
        "password",
        "users",
        "api_clients",
        "cylinders",
        "applications",
        "change_requests",
    }
    assert summary["password"] == "demo-pass-1"
    for code in ("500112", "500105"):
        for prefix, role in (
            ("accept", "acceptor"),
            ("review", "reviewer"),
            ("approve", "approver"),
        ):
            assert summary["users"][f"{prefix}-{code}"] == role
        assert summary["users"][f"applicant-{code}"] == "applicant"
        assert set(summary["cylinders"][code]) == {
            "fillable",
            "overdue",
            "stopped",
            "scrapped",
            "cancelled",
        }
        for cylinder_id in summary["cylinders"][code].values():
            assert db.session.get(Cylinder, cylinder_id).district_code == code
    assert summary["users"]["city"] == "supervisor" and summary["users"]["admin"] == "admin"
    # A pending change request of each kind (变更申请).
    kinds = {
        c.kind.value: c.status
        for c in db.session.scalars(
            select(ChangeRequest).where(ChangeRequest.id.in_(summary["change_requests"].values()))
        )
    }
    assert set(kinds) == {k.value for k in ChangeKind}
    assert all(status in change_workflow.OPEN_STATUSES for status in kinds.values())
    for client in summary["api_clients"]:
        assert set(client) == {"app_id", "app_secret", "unit_credit_code", "scopes"}
        stored = db.session.scalar(select(ApiClient).where(ApiClient.app_id == client["app_id"]))
        assert check_password_hash(stored.secret_hash, client["app_secret"])
        assert client["app_secret"] not in stored.secret_hash


def test_seed_demo_users_can_log_in_with_the_given_password(app, client):
    from .conftest import login

    app.test_cli_runner().invoke(args=["seed-demo", "--password", "demo-pass-2"])
    assert login(client, "accept-500112", "demo-pass-2").status_code == 302


def test_seed_demo_without_password_prints_a_random_one(app):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "password for every demo user:" in result.output


def test_create_api_client_prints_the_secret_once_and_stores_it_hashed(app):
    unit = factories.make_unit()
    result = app.test_cli_runner().invoke(
        args=[
            "create-api-client",
            "--unit-credit-code",
            unit.credit_code,
            "--scopes",
            "filling,query",
        ]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    client = db.session.scalar(select(ApiClient).where(ApiClient.app_id == printed["app_id"]))
    assert client.unit_id == unit.id and client.scope_set == {"filling", "query"}
    assert printed["app_secret"] not in client.secret_hash
    assert check_password_hash(client.secret_hash, printed["app_secret"])


def test_create_api_client_refuses_unknown_unit_and_scope(app):
    runner = app.test_cli_runner()
    unknown = runner.invoke(
        args=["create-api-client", "--unit-credit-code", "91110000802100433B", "--scopes", "query"]
    )
    assert unknown.exit_code == 1 and "找不到" in unknown.output
    unit = factories.make_unit()
    bad_scope = runner.invoke(
        args=["create-api-client", "--unit-credit-code", unit.credit_code, "--scopes", "admin"]
    )
    assert bad_scope.exit_code == 1 and "未知的接口权限" in bad_scope.output


def test_create_user_with_district_scope(app):
    result = app.test_cli_runner().invoke(
        args=[
            "create-user",
            "--username",
            "clerk-x",
            "--role",
            "acceptor",
            "--password",
            "pw-12345678",
            "--district",
            "500105",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "clerk-x"))
    assert user.district_code == "500105" and user.unit_id is None


def test_create_user_refuses_a_clerk_without_district(app):
    result = app.test_cli_runner().invoke(
        args=[
            "create-user",
            "--username",
            "clerk-y",
            "--role",
            "reviewer",
            "--password",
            "pw-12345678",
        ]
    )
    assert result.exit_code == 1 and "必须指定所属区县" in result.output


def test_bench_data_appends_synthetic_cylinders(app):
    from regbackoffice.benchdata import generate_cylinders

    before = db.session.scalar(select(func.count()).select_from(Cylinder))
    generate_cylinders(1000, batch=400)
    generate_cylinders(500)
    assert db.session.scalar(select(func.count()).select_from(Cylinder)) == before + 1500


def test_seed_demo_has_a_mid_audit_and_a_certified_application_per_district(app):
    from regbackoffice.models import (
        Application,
        ApplicationItem,
        ApplicationStatus,
        AuditVerdict,
        Certificate,
    )

    app.test_cli_runner().invoke(args=["seed-demo", "--password", "demo-pass-3"])
    for code in ("500112", "500105"):
        apps = db.session.scalars(
            select(Application).where(Application.district_code == code)
        ).all()
        by_status: dict = {}
        for application in apps:
            by_status.setdefault(application.status, []).append(application)
        certified = by_status[ApplicationStatus.CERTIFIED]
        assert certified  # the demo certificate (and the dashboard's history)
        for application in certified:
            certificate = db.session.scalar(
                select(Certificate).where(Certificate.application_id == application.id)
            )
            assert certificate.number.startswith(f"瓶渝{code[-3:]}")
        mid_audit = [
            a
            for a in by_status[ApplicationStatus.SUBMITTED]
            if {
                i.audit_verdict
                for i in db.session.scalars(
                    select(ApplicationItem).where(ApplicationItem.application_id == a.id)
                )
            }
            == {AuditVerdict.CORRECT, AuditVerdict.WRONG, AuditVerdict.PENDING}
        ]
        assert len(mid_audit) == 1 and mid_audit[0].audit_completed_at is None


def test_seed_demo_dates_read_in_order(app):
    """Created before submitted; certificate numbers rise with their issue dates."""
    from regbackoffice.models import Application, Certificate

    app.test_cli_runner().invoke(args=["seed-demo", "--password", "demo-pass-4"])
    for application in db.session.scalars(select(Application)):
        if application.submitted_at is not None:
            assert application.created_at <= application.submitted_at, application.id
    for code in ("500112", "500105"):
        issued = db.session.execute(
            select(
                Certificate.year, Certificate.serial, Certificate.issue_date, Certificate.created_at
            )
            .where(Certificate.district_code == code)
            .order_by(Certificate.year, Certificate.serial)
        ).all()
        assert len(issued) == 4  # three past certificates and today's
        assert [row.issue_date for row in issued] == sorted(row.issue_date for row in issued)
        assert [row.created_at for row in issued] == sorted(row.created_at for row in issued)


def test_seed_demo_help_states_the_password_rule(app):
    from regbackoffice.accounts import MIN_PASSWORD_LENGTH

    shown = app.test_cli_runner().invoke(args=["seed-demo", "--help"])
    assert f"at least {MIN_PASSWORD_LENGTH} characters" in " ".join(shown.output.split())
    refused = app.test_cli_runner().invoke(args=["seed-demo", "--password", "short"])
    assert refused.exit_code != 0 and f"密码至少{MIN_PASSWORD_LENGTH}位" in refused.output


def test_scripts_run_points_certificate_qr_codes_at_the_port_it_serves(tmp_path):
    """scripts/run with its helpers stubbed: the seeding and the server see one address."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    shutil.copy(root / "scripts" / "run", tmp_path / "scripts" / "run")
    (tmp_path / "scripts" / "lib.sh").write_text(
        'cd "$(dirname "${BASH_SOURCE[0]}")/.."\nAPP_DEBS=()\n'
        "ensure_debs() { :; }\nensure_venv() { :; }\n"
    )
    flask = tmp_path / ".venv" / "bin" / "flask"
    flask.parent.mkdir(parents=True)
    flask.write_text('#!/bin/sh\necho "flask $1 base=$REGBO_PUBLIC_BASE_URL" >> calls.log\n')
    flask.chmod(0o755)

    def run(**env: str) -> list[str]:
        (tmp_path / "calls.log").unlink(missing_ok=True)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGBO_", "PORT"))}
        done = subprocess.run(
            ["bash", str(tmp_path / "scripts" / "run")],
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return (tmp_path / "calls.log").read_text().splitlines()

    calls = run(PORT="5123")
    assert "flask seed-demo base=http://127.0.0.1:5123" in calls
    assert "flask run base=http://127.0.0.1:5123" in calls
    assert "flask seed-demo base=http://127.0.0.1:5000" in run()
    chosen = run(PORT="5123", REGBO_PUBLIC_BASE_URL="https://regbo.example.gov.cn")
    assert "flask seed-demo base=https://regbo.example.gov.cn" in chosen
