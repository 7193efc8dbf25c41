"""Large imports as rq jobs (in-process and with the real worker) and concurrent imports."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from regbackoffice import storage
from regbackoffice.extensions import db
from regbackoffice.imports import refused
from regbackoffice.imports.job import BACKGROUND_THRESHOLD, run_import_job
from regbackoffice.imports.reader import parse_workbook
from regbackoffice.models import ApplicationItem, ImportJob, ImportStatus, Role

from . import factories
from .conftest import (
    TEST_REDIS_URL,
    post_form,
)
from .xlsx_helpers import good_row, workbook_bytes

ROOT = Path(__file__).resolve().parent.parent


def _big_file(count: int, prefix: str) -> bytes:
    rows = [good_row(f"{prefix}{n:05d}") for n in range(count)]
    rows[5] = good_row(f"{prefix}BAD", volume="abc")
    return workbook_bytes(rows)


def test_large_import_runs_as_a_job_with_progress_and_is_safe_to_run_twice(
    app, client, login_as, redis_conn
):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    data = _big_file(BACKGROUND_THRESHOLD + 1, "JOB")
    response = post_form(
        client,
        f"/applications/{application.id}/import",
        {"file": (io.BytesIO(data), "big.xlsx")},
        page=f"/applications/{application.id}",
        content_type="multipart/form-data",
    )
    response.close()
    response.request.input_stream.close()
    assert response.status_code == 302
    job = db.session.scalar(select(ImportJob).where(ImportJob.application_id == application.id))
    assert job.status is ImportStatus.QUEUED and job.file_key and storage.exists(job.file_key)
    assert application.item_count == 0

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "progress-bar" in page and "正在后台导入" in page
    status = client.get(f"{response.headers['Location']}/status.json").get_json()
    assert status["status"] == "queued" and status["total"] == 2001

    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    assert queue.count == 1
    SimpleWorker([queue], connection=redis_conn).work(burst=True)

    db.session.expire_all()
    assert job.status is ImportStatus.DONE
    assert (job.imported_count, job.failed_count) == (2000, 1)
    assert job.file_key is None
    assert application.item_count == 2000
    status = client.get(f"{response.headers['Location']}/status.json").get_json()
    assert status == {**status, "status": "done", "processed": 2001, "imported": 2000}
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "成功导入 <strong>2000</strong> 行" in page and "下载错误数据" in page

    run_import_job(job.id)  # a second run changes nothing
    db.session.expire_all()
    count = db.session.scalar(
        select(func.count())
        .select_from(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
    )
    assert count == 2000 and application.item_count == 2000


# ------------------------------------------------------------ committed data, real processes


def _committed_application(live_app):
    with live_app.app_context():
        applicant = factories.make_user(Role.APPLICANT)
        application = factories.make_application(applicant.unit, created_by=applicant)
        db.session.commit()
        ids = application.id, applicant.id
        db.session.remove()
    return ids


def test_real_rq_worker_process_runs_the_import(live_app, live_db, redis_conn):
    app_id, user_id = _committed_application(live_app)
    with live_app.app_context():
        key = storage.new_key("imports", ".xlsx")
        storage.save(key, _big_file(30, "WRK"))
        job = ImportJob(
            application_id=app_id,
            created_by_id=user_id,
            total_rows=30,
            file_key=key,
            original_name="w.xlsx",
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
        # Queued under the path jobs had before the imports package: it must still run.
        Queue(live_app.config["RQ_QUEUE"], connection=redis_conn).enqueue(
            "regbackoffice.excel_import.run_import_job", job_id
        )
        db.session.remove()
    env = {
        **os.environ,
        "REGBO_ENV": "testing",
        "REGBO_SECRET_KEY": "worker-test-key",
        "REGBO_DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "REGBO_REDIS_URL": TEST_REDIS_URL,
        "REGBO_RQ_QUEUE": live_app.config["RQ_QUEUE"],
        "REGBO_STORAGE_DIR": live_app.config["STORAGE_DIR"],
    }
    flask = Path(sys.executable).with_name("flask")
    done = subprocess.run(
        [str(flask), "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with live_app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job.status is ImportStatus.DONE, job.message
        assert (job.imported_count, job.failed_count) == (29, 1)
        assert [row["row"] for row in refused.first(job_id)] == [7]
        assert not storage.exists(key)
        db.session.remove()


def _race(live_app, rows_first, rows_second=None, *, second=None, **second_kw):
    """Import ``rows_first`` into one committed application and, while that transaction is
    still open, run the second contender (``rows_second`` imported into another application,
    with ``second_kw`` for its import, or the callable ``second``) in its own thread: it
    must wait on the first's claims.
    Returns the outcomes ("first", "second") and the two application ids."""
    first_id, _ = _committed_application(live_app)
    second_id, _ = _committed_application(live_app)
    first_flushed, commit_first = threading.Event(), threading.Event()
    outcomes = {}
    errors = []

    def import_into(application_id, rows, before_commit=None, **kw):
        from regbackoffice.models import Application

        application = db.session.get(Application, application_id)
        outcome = factories.import_under_job(application, rows, **kw)
        if before_commit:
            before_commit()
        db.session.commit()
        return outcome

    def run(name, work):
        try:
            with live_app.app_context():
                outcomes[name] = work()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def hold_until_second_waits():
        first_flushed.set()
        assert commit_first.wait(30)

    first = threading.Thread(
        target=run,
        args=("first", lambda: import_into(first_id, rows_first, hold_until_second_waits)),
    )
    first.start()
    assert first_flushed.wait(30)
    work = second or (lambda: import_into(second_id, rows_second, **second_kw))
    contender = threading.Thread(target=run, args=("second", work))
    contender.start()
    # Wait until the second transaction is blocked on the first one's claim.
    with live_app.app_context():
        engine = db.engine
    deadline = time.monotonic() + 30
    with engine.connect() as probe:
        while time.monotonic() < deadline:
            # In this database only: other databases of the server have their own waits.
            waiting = probe.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar()
            probe.commit()
            if waiting:
                break
            time.sleep(0.05)
    assert waiting, "the second contender never waited for the first import"
    commit_first.set()
    first.join(30)
    contender.join(30)
    assert not errors, errors
    return outcomes, first_id, second_id


def test_two_concurrent_imports_of_the_same_cylinder_exactly_one_keeps_it(live_app, live_db):
    rows = parse_workbook(workbook_bytes([good_row("RACE-1"), good_row("RACE-OWN-A")]))
    rows_b = parse_workbook(workbook_bytes([good_row("RACE-1"), good_row("RACE-OWN-B")]))
    outcomes, first_id, _second_id = _race(live_app, rows, rows_b)

    assert outcomes["first"].imported == 2 and outcomes["first"].failed == []
    assert outcomes["second"].imported == 1
    assert outcomes["second"].failed[0]["row"] == 2
    assert "同时导入冲突" in outcomes["second"].failed[0]["reasons"][0]
    with live_app.app_context():
        owners = db.session.scalars(
            select(ApplicationItem.application_id).where(ApplicationItem.product_no == "RACE-1")
        ).all()
        assert owners == [first_id]
        db.session.remove()


def test_rows_that_lose_their_claim_are_stored_with_the_refused_rows_in_row_order(
    live_app, live_db
):
    """The rows a concurrent import claimed first are found only at the end (the final
    insert), after every chunk's refused rows were stored: they are stored then, a chunk at
    a time, and read back in row order with the others."""
    rows = parse_workbook(workbook_bytes([good_row(f"LOST-{n}") for n in range(3)]))
    rows_b = parse_workbook(
        workbook_bytes(
            [
                good_row("LOST-2"),  # row 2: lost
                good_row("LOST-BAD", volume="abc"),  # row 3: refused by its rule
                good_row("LOST-0"),  # row 4: lost
                good_row("LOST-OWN"),  # row 5: imported
                good_row("LOST-1"),  # row 6: lost
            ]
        )
    )
    outcomes, _, second_id = _race(live_app, rows, rows_b, chunk_rows=2)

    second = outcomes["second"]
    assert second.imported == 1
    assert [f["row"] for f in second.failed] == [2, 3, 4, 6]
    assert [f["values"][1] for f in second.failed] == ["LOST-2", "LOST-BAD", "LOST-0", "LOST-1"]
    for failed in (second.failed[0], second.failed[2], second.failed[3]):
        assert "同时导入冲突" in failed["reasons"][0]
    assert "“abc”不是数字" in "".join(second.failed[1]["reasons"])
    with live_app.app_context():  # committed with the import
        assert [f["row"] for f in refused.every(second.job_id)] == [2, 3, 4, 6]
        kept = db.session.scalars(
            select(ApplicationItem.product_no).where(ApplicationItem.application_id == second_id)
        ).all()
        assert kept == ["LOST-OWN"]
        db.session.remove()


def test_two_concurrent_imports_of_one_new_qr_url_on_two_cylinders_only_the_first_keeps_it(
    live_app, live_db
):
    """一瓶一码 under concurrency: two different cylinders given the same new QR URL in two
    applications at the same instant; the look-ups both pass, the unique claim decides."""
    url = "https://trace.example.com/q/RACE-TAG-SHARED"
    rows = parse_workbook(workbook_bytes([good_row("RACE-TAG-A", tag_value=url)]))
    rows_b = parse_workbook(
        workbook_bytes([good_row("RACE-TAG-OWN"), good_row("RACE-TAG-B", tag_value=url)])
    )
    outcomes, first_id, _second_id = _race(live_app, rows, rows_b)

    assert outcomes["first"].imported == 1 and outcomes["first"].failed == []
    assert outcomes["second"].imported == 1
    [failed] = outcomes["second"].failed
    assert failed["row"] == 3
    with live_app.app_context():
        from regbackoffice.models import Application

        first_number = db.session.get(Application, first_id).number or first_id
        owners = db.session.scalars(
            select(ApplicationItem.application_id).where(ApplicationItem.qr_content == url)
        ).all()
        db.session.remove()
    assert failed["reasons"] == [
        f"二维码“{url}”刚被同时导入，已用于申请{first_number}中的另一只气瓶："
        "一瓶一码，同一二维码不能用于两只气瓶，请核对后填写本气瓶自己的二维码"
    ]
    assert owners == [first_id]


def test_an_api_binding_of_a_tag_being_imported_waits_and_is_refused(live_app, live_db):
    """一瓶一码 between the doors: a platform binds, through the API, the QR URL an import is
    giving another cylinder at that instant. The binding waits for the import's commit and
    is refused naming the application (without the lock both would pass their look-ups)."""
    from .api_helpers import assert_envelope, png_base64, post_json, token_for

    url = "https://trace.example.com/q/RACE-BIND-SHARED"
    with live_app.app_context():
        unit = factories.make_unit()
        archived = factories.make_cylinder(unit, qr_content=None, tag_type=None)
        api_client, _ = factories.make_api_client(unit)
        token = token_for(api_client)
        db.session.commit()
        cylinder_id = archived.id
        db.session.remove()

    def bind():
        body = {"id": cylinder_id, "tag_type": "二维码", "qr_content": url}
        body["stamp_photo"] = png_base64()
        return post_json(live_app.test_client(), "/api/v1/tags/bind", body, token)

    rows = parse_workbook(workbook_bytes([good_row("RACE-BIND-A", tag_value=url)]))
    outcomes, first_id, _ = _race(live_app, rows, second=bind)

    assert outcomes["first"].imported == 1
    with live_app.app_context():
        from regbackoffice.models import Application

        number = db.session.get(Application, first_id).number or first_id
        db.session.remove()
    refused = assert_envelope(outcomes["second"], 409)
    assert refused["message"] == (
        f"该二维码已用于申请{number}中的另一只气瓶，不能绑定到本气瓶：一瓶一码"
    )


def test_a_deleted_draft_releases_its_tags_for_a_new_application(live_app, live_db):
    """The claim goes with the item: deleting the draft frees the tag (committed for real)."""
    url = "https://trace.example.com/q/RELEASED-TAG"
    first_id, _ = _committed_application(live_app)
    second_id, _ = _committed_application(live_app)
    from regbackoffice import applications
    from regbackoffice.models import Application, User

    with live_app.app_context():
        first = db.session.get(Application, first_id)
        factories.import_under_job(
            first, parse_workbook(workbook_bytes([good_row("REL-A", tag_value=url)]))
        )
        db.session.commit()
        first = db.session.get(Application, first_id)
        applications.delete_application(first, db.session.get(User, first.created_by_id))
        db.session.commit()
        second = db.session.get(Application, second_id)
        outcome = factories.import_under_job(
            second, parse_workbook(workbook_bytes([good_row("REL-B", tag_value=url)]))
        )
        db.session.commit()
        assert outcome.imported == 1, outcome.failed
        db.session.remove()


def test_an_import_that_never_reached_redis_is_sent_again_when_its_page_is_polled(
    app, client, login_as, redis_conn
):
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    key = storage.new_key("imports", ".xlsx")
    storage.save(key, _big_file(10, "LOST"))
    job = ImportJob(
        application_id=application.id,
        created_by_id=applicant.id,
        total_rows=10,
        file_key=key,
        original_name="lost.xlsx",
    )
    db.session.add(job)
    db.session.flush()
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    assert queue.count == 0  # as if Redis had been down when the upload committed

    status = client.get(f"/applications/{application.id}/imports/{job.id}/status.json")
    assert status.get_json()["status"] == "queued"
    assert queue.count == 1
    client.get(f"/applications/{application.id}/imports/{job.id}/status.json")
    assert queue.count == 1  # sent once, not on every poll

    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    db.session.expire_all()
    assert job.status is ImportStatus.DONE and job.imported_count == 9


def test_import_job_of_another_unit_is_404(client, login_as):
    other = factories.make_application()
    job = ImportJob(application_id=other.id, created_by_id=other.created_by_id)
    db.session.add(job)
    db.session.flush()
    login_as(Role.APPLICANT)
    assert client.get(f"/applications/{other.id}/imports/{job.id}").status_code == 404
    assert client.get(f"/applications/{other.id}/imports/{job.id}/errors.xlsx").status_code == 404
