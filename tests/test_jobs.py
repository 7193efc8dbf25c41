"""Jobs by name: one registry instead of dotted paths spread over the code."""

import pytest
from rq import Queue

from regbackoffice import jobs


def test_every_job_of_the_app_is_registered_under_its_name():
    for name in (
        "render_certificate",
        "refresh_dashboard_stats",
        "run_import",
        "end_idle_sessions",
    ):
        assert callable(jobs.lookup(name))


def test_an_unknown_name_is_refused_before_anything_is_queued(app, redis_conn):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    with pytest.raises(LookupError, match="no job is named 'render_certifcate'"):
        jobs.send(queue, "render_certifcate", 1)
    assert queue.count == 0


def test_rq_stores_the_name_not_the_function_path(app, redis_conn):
    queue = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    queued = jobs.send(queue, "render_certificate", 42)
    assert queued.func_name == "regbackoffice.jobs.run"
    assert queued.args == ("render_certificate", 42)
    assert jobs.name_of(queued) == "render_certificate"


def test_two_jobs_cannot_share_a_name():
    @jobs.job("test_only_job")
    def first() -> None: ...

    with pytest.raises(RuntimeError, match="two jobs are named 'test_only_job'"):

        @jobs.job("test_only_job")
        def second() -> None: ...
