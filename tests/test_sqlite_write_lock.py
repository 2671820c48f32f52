"""The SQLite backend's write lock (crossfeed/db/sqlite3/base.py): write transactions queue on a per-process thread
lock and an flock shared by every process, instead of on SQLite's sleeping busy handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection, transaction

from annotation.models import Language
from crossfeed.db.sqlite3.base import WriteLock

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from crossfeed.db.sqlite3.base import WriteLock
lock = WriteLock.for_database({database!r})
lock.acquire(timeout=5)
print("held", flush=True)
time.sleep({hold})
lock.release()
"""


def hold_in_child(database: Path, hold: float) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), database=str(database), hold=hold)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_writer_in_another_process_waits_for_the_holder_and_no_longer(tmp_path):
    database = tmp_path / "db.sqlite3"
    child = hold_in_child(database, hold=0.6)
    lock = WriteLock.for_database(str(database))
    start = time.monotonic()
    lock.acquire(timeout=5)
    waited = time.monotonic() - start
    lock.release()
    child.wait(timeout=10)
    assert 0.3 < waited < 3, waited


def test_the_kernel_frees_the_lock_of_a_killed_holder(tmp_path):
    database = tmp_path / "db.sqlite3"
    child = hold_in_child(database, hold=60)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    lock = WriteLock.for_database(str(database))
    start = time.monotonic()
    lock.acquire(timeout=5)
    lock.release()
    assert time.monotonic() - start < 1


def test_a_thread_that_cannot_get_the_lock_in_time_gets_database_is_locked(tmp_path):
    lock = WriteLock.for_database(str(tmp_path / "db.sqlite3"))
    lock.acquire(timeout=1)
    failed: list[BaseException] = []

    def contender() -> None:
        try:
            lock.acquire(timeout=0.2)
        except OperationalError as exc:
            failed.append(exc)

    thread = threading.Thread(target=contender)
    thread.start()
    thread.join(5)
    lock.release()
    assert len(failed) == 1 and "database is locked" in str(failed[0])  # crossfeed/busy.py: 503 + Retry-After


def test_one_lock_per_process_and_file(tmp_path):
    first = WriteLock.for_database(str(tmp_path / "a.sqlite3"))
    assert WriteLock.for_database(str(tmp_path / "a.sqlite3")) is first
    assert WriteLock.for_database(str(tmp_path / "b.sqlite3")) is not first


@pytest.mark.django_db(transaction=True)
def test_atomic_holds_the_lock_until_commit_or_rollback():
    if connection.vendor != "sqlite":
        pytest.skip("the write lock belongs to the SQLite backend")
    assert connection._write_lock is None
    with transaction.atomic():
        Language.objects.filter(code="sw").update(name="Swahili")
        held = connection._write_lock
        assert held is not None and held.threads.locked()
        with transaction.atomic():  # a savepoint: no second acquire (which would deadlock)
            Language.objects.filter(code="sw").exists()
    assert connection._write_lock is None and not held.threads.locked()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Language.objects.filter(code="sw").update(name="Swahili")
        1 / 0  # noqa: B018
    assert connection._write_lock is None and not held.threads.locked()


def test_a_writer_behind_a_long_transaction_gives_up_after_the_timeout_and_leaves_no_lock_behind(tmp_path):
    database = tmp_path / "db.sqlite3"
    child = hold_in_child(database, hold=1.5)
    lock = WriteLock.for_database(str(database))
    start = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        lock.acquire(timeout=0.4)
    assert 0.3 < time.monotonic() - start < 1.2
    child.wait(timeout=10)
    time.sleep(0.2)  # the abandoned waiter takes the freed lock and lets go of it at once
    other = hold_in_child(database, hold=0)  # another process gets it: nothing of ours still holds it
    other.wait(timeout=10)
    lock.acquire(timeout=1)
    lock.release()


def test_waits_share_one_helper_thread_and_a_caller_after_one_that_gave_up_still_gets_the_lock(tmp_path):
    database = tmp_path / "db.sqlite3"
    lock = WriteLock.for_database(str(database))
    helpers = lambda: [t for t in threading.enumerate() if t.name == "sqlite-write-lock-wait"]  # noqa: E731
    before = len(helpers())
    for _ in range(3):
        child = hold_in_child(database, hold=0.2)
        lock.acquire(timeout=5)  # contended: waits through the helper
        lock.release()
        child.wait(timeout=10)
    assert len(helpers()) == before + 1
    child = hold_in_child(database, hold=0.8)
    with pytest.raises(OperationalError, match="database is locked"):
        lock.acquire(timeout=0.1)
    start = time.monotonic()
    lock.acquire(timeout=5)  # the helper is still blocked on the abandoned wait: it hands the lock to this caller
    waited = time.monotonic() - start
    lock.release()
    child.wait(timeout=10)
    assert 0.3 < waited < 3, waited
    other = hold_in_child(database, hold=0)  # and nothing of ours holds it afterwards
    other.wait(timeout=10)
