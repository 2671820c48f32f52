"""A lane's worker: django-tasks-db's worker loop, made to outlast database errors and to clean up after a worker
that died.

django-tasks-db claims the next task in an exclusive transaction. Its loop forgives "is locked" only from the
query inside that transaction; the same error at BEGIN (SQLite: a 150,000-item import held the write lock past the
busy timeout) or a connection lost under it (PostgreSQL restarted) escapes the loop and ends the process, and with
it every queue that process served. Here such an error is logged and the loop starts again after a pause that
doubles up to RETRY_MAX_SECONDS (a database that is down is not hammered); the pause starts short again once the
loop has run for RETRY_RESET_SECONDS. A task's own errors never reach this far: the worker records them on the task.

A first SIGTERM or Ctrl-C lets the task in hand finish, as in django-tasks-db, and tells long tasks through
crossfeed.jobs.shutdown.stop_requested (a training run then checkpoints and stops its trainer); a second one exits.
"""

from __future__ import annotations

import contextlib
import logging
import time
from types import FrameType

from django.db import InterfaceError, OperationalError, connections
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker

from crossfeed.jobs.lanes import RECOVER_AT_START
from crossfeed.jobs.shutdown import stop_requested

logger = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
RETRY_RESET_SECONDS = 120.0
# Errors of the database or of the connection to it; the next attempt may well succeed.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class LaneWorker(Worker):
    def __init__(self, *, lane: str, **options) -> None:
        super().__init__(**options)
        self.lane = lane
        self.database_errors = 0

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        stop_requested.set()
        super().shutdown(signum, frame)

    def run(self) -> None:
        pause = RETRY_FIRST_SECONDS
        while self.running:
            began = time.monotonic()
            try:
                self.recover()
                super().run()
                return  # --batch or --max-tasks reached
            except TRANSIENT_ERRORS as exc:
                if not self.running:
                    return
                self.database_errors += 1
                if time.monotonic() - began > RETRY_RESET_SECONDS:
                    pause = RETRY_FIRST_SECONDS
                logger.warning("%s lane worker %s: database error, trying again in %g s: %s: %s", self.lane,
                               self.worker_id, pause, type(exc).__name__, exc)
                _drop_connections()
                self.startup_delay = False
                time.sleep(pause)  # a signal here exits at once: no task is in hand
                pause = min(pause * 2, RETRY_MAX_SECONDS)

    def recover(self) -> None:
        for path in RECOVER_AT_START[self.lane]:
            try:
                count = import_string(path)()
            except TRANSIENT_ERRORS:
                raise  # retried with the loop
            except Exception:  # a clean-up that fails must not keep the lane from working (nor crash-loop it)
                logger.exception("%s lane worker %s: %s failed", self.lane, self.worker_id, path)
                continue
            if count:
                logger.warning("%s lane worker %s: %s cleaned up %d job(s) of a worker that died", self.lane,
                               self.worker_id, path.rpartition(".")[2], count)


def _drop_connections() -> None:
    # A connection that failed may be half-open or inside a broken transaction; the next query opens a new one.
    for connection in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):
            connection.close()
