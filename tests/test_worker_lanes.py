"""Worker lanes and supervision: `make run` keeps serving when a worker or the web server dies, and a worker outlasts
a database that stays locked past its busy timeout.

Real processes (bin/serve with supervisord, `manage.py crossfeed_worker`) on the test database file. The export
that finishes while a training run holds the accelerator lane is in tests/training/test_lanes.py (it trains).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotation.models import Export, Item, JobStatus
from annotation.services.campaigns import campaign_create
from annotation.services.exports import export_create
from annotation.services.judgments import judgment_submit
from crossfeed.jobs.lanes import lane_queues
from tests.conftest import item_line, new_key, ranks_for
from tests.make_run import ROOT, healthz, lane_worker_command, make_run, served_env, wait_for

EXPORT_DONE_S = 60  # generous on two shared cores; an export of four items takes well under a second of work


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def judged_campaign(transactional_db, media, admin_user, make_annotator, import_items):
    campaign = campaign_create(name="Lanes", created_by=admin_user, overlap=2)
    import_items(campaign, [item_line(f"lane-{n}") for n in range(4)])
    annotators = [make_annotator(f"lane{n}", ["ta"], ["sw"]) for n in range(2)]
    for item in Item.objects.filter(campaign=campaign):
        for annotator in annotators:
            judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    return campaign


def export_status(export: Export) -> str:
    export.refresh_from_db()
    return export.status


def wait_export(export: Export, timeout: float = EXPORT_DONE_S) -> float:
    began = time.monotonic()
    wait_for(lambda: export_status(export) in (JobStatus.SUCCEEDED, JobStatus.FAILED), timeout=timeout,
             message=f"export {export.pk} still {export.status} after {timeout} s")
    assert export.status == JobStatus.SUCCEEDED, export.error
    return time.monotonic() - began


def test_the_fast_lane_takes_every_queue_but_the_accelerators():
    accelerator = ["training", "evaluation", "generation", "translation"]
    assert lane_queues("accelerator") == (accelerator, [])
    assert lane_queues("fast") == (["*"], accelerator)
    queues = settings.TASKS["default"]["QUEUES"]
    fast = [queue for queue in queues if queue not in lane_queues("fast")[1]]
    assert set(fast) >= {"default", "exports", "imports"}
    assert not set(fast) & set(lane_queues("accelerator")[0])


def test_make_run_keeps_serving_when_a_worker_or_the_web_server_dies(judged_campaign, admin_user, tmp_path):
    with make_run(served_env(tmp_path / "var"), tmp_path / "serve.log") as served:
        worker = served.lane_worker("fast")
        worker.send_signal(signal.SIGKILL)
        # The web server answers all along: the old bin/serve stopped gunicorn as soon as a worker exited.
        deadline = time.monotonic() + 30
        replacement = None
        while time.monotonic() < deadline and replacement is None:
            assert healthz(served.port, timeout=30) == 200, served.log_text()[-3000:]
            found = served.lane_worker("fast")
            replacement = found if found is not None and found.pid != worker.pid else None
            time.sleep(0.2)
        assert replacement is not None, served.log_text()[-3000:]
        log = served.log_text()
        assert "exited: worker-fast (terminated by SIGKILL; not expected)" in log
        assert "spawned: 'worker-fast'" in log
        # The restarted worker works.
        export = export_create(campaign=judged_campaign, created_by=admin_user, min_judgments=2)
        wait_export(export)

        # The web server dying is handled the same way: started again, the workers untouched.
        master = served.web_master()
        accelerator = served.lane_worker("accelerator")
        master.send_signal(signal.SIGKILL)
        def restarted() -> bool:
            # One look at the process table: two calls can see the new master come and go between them.
            found = served.web_master()
            return found is not None and found.pid != master.pid

        wait_for(restarted, timeout=30,
                 message=lambda: "gunicorn was not started again:\n" + served.log_text()[-3000:])

        def answering() -> bool:
            try:
                return healthz(served.port) == 200
            except OSError:
                return False

        wait_for(answering, timeout=60, message="the restarted gunicorn does not answer /healthz")
        assert "exited: web (terminated by SIGKILL; not expected)" in served.log_text()
        assert served.lane_worker("accelerator").pid == accelerator.pid


@pytest.mark.django_db(transaction=True)
def test_a_worker_outlasts_a_database_locked_past_its_busy_timeout(judged_campaign, admin_user, tmp_path):
    database = Path(connection.settings_dict["NAME"])
    log = tmp_path / "worker.log"
    env = served_env(tmp_path / "var", SQLITE_BUSY_TIMEOUT="1")
    with log.open("ab") as output:
        worker = subprocess.Popen(lane_worker_command("fast", "--interval", "0.2"), cwd=ROOT, env=env,
                                  stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Starting worker" in log.read_text(), timeout=60, message="the worker did not start")
        # Another writer holds the write lock for four busy timeouts, as the 150,000-item import did for 20 s: the
        # worker's claim transaction cannot begin. django-tasks-db's worker exited with "database is locked" here.
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        time.sleep(4)
        holder.execute("ROLLBACK")
        holder.close()
        assert worker.poll() is None, log.read_text()[-3000:]
        assert "database error, trying again" in log.read_text()
        export = export_create(campaign=judged_campaign, created_by=admin_user, min_judgments=2)
        wait_export(export)
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.postgres
def test_a_worker_outlasts_a_postgresql_outage(tmp_path):
    """The database server goes away for a few seconds (a restart, a failover): the worker's connection is cut and
    every reconnection is refused meanwhile. django-tasks-db's worker exited at the first refused connection."""
    import psycopg

    from tests.postgres import PostgresUnavailable, cluster_outage, find_server_binaries, throwaway_cluster

    try:
        find_server_binaries()
        cluster = throwaway_cluster()
        database_url = cluster.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    log = tmp_path / "worker.log"
    worker = None
    try:
        env = {**served_env(tmp_path / "var"), "DATABASE_URL": database_url}
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=600, check=False)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        with log.open("ab") as output:
            worker = subprocess.Popen(lane_worker_command("fast", "--interval", "0.2"), cwd=ROOT, env=env,
                                      stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: "Starting worker" in log.read_text(), timeout=60, message="the worker did not start")
        cluster_outage(database_url, seconds=4)
        assert worker.poll() is None, log.read_text()[-3000:]
        assert "database error, trying again" in log.read_text()
        # It takes work again: a task for an export that does not exist runs (and fails, recorded on the task).
        enqueue = subprocess.run([sys.executable, "-c", "import django; django.setup(); from annotation.tasks import "
                                  "run_export; print(run_export.enqueue(0).id)"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert enqueue.returncode == 0, enqueue.stderr[-3000:]
        task_id = enqueue.stdout.strip().splitlines()[-1]

        def task_status() -> str:
            with psycopg.connect(database_url) as database:
                row = database.execute("SELECT status FROM django_tasks_database_dbtaskresult WHERE id = %s",
                                       [task_id]).fetchone()
            return row[0] if row and row[0] in ("SUCCESSFUL", "FAILED") else ""

        assert wait_for(task_status, timeout=EXPORT_DONE_S, message="the worker did not run the task") == "FAILED"
        assert worker.poll() is None
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        cluster.__exit__(None, None, None)
