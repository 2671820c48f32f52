"""`manage.py crossfeed_worker --lane fast|accelerator`: the background worker of one lane (crossfeed/jobs)."""

from __future__ import annotations

import os
import socket
from argparse import ArgumentParser

from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import (
    valid_backend_name,
    valid_interval,
    valid_max_tasks,
    validate_worker_id,
)

from crossfeed.jobs.lanes import LANES, lane_queues
from crossfeed.jobs.worker import LaneWorker


class Command(DbWorkerCommand):
    """db_worker's command with a lane instead of queue names, and no autoreload (a worker's process manager starts
    it again after a code change)."""

    help = ("Run the background worker of one lane: 'fast' (exports, imports and every queue no other lane names) or "
            "'accelerator' (training and evaluation; one per GPU host). docs/deploy.md.")

    def add_arguments(self, parser: ArgumentParser) -> None:  # db_worker's, less --queue-name and --reload
        parser.add_argument("--lane", required=True, choices=LANES, help="which lane's queues to take")
        parser.add_argument("--interval", default=1.0, type=valid_interval,
                            help="seconds to wait when no task is queued (default: %(default)s)")
        parser.add_argument("--batch", action="store_true", help="run the queued tasks, then exit")
        parser.add_argument("--max-tasks", default=None, type=valid_max_tasks,
                            help="exit after this many tasks (the process manager starts a fresh one)")
        parser.add_argument("--backend", default=DEFAULT_TASK_BACKEND_ALIAS, type=valid_backend_name,
                            dest="backend_name", help="the task backend (default: %(default)s)")
        parser.add_argument("--no-startup-delay", action="store_false", dest="startup_delay",
                            help="start polling at once instead of after up to a second")
        parser.add_argument("--worker-id", default=None, type=validate_worker_id,
                            help="unique among all workers (default: lane@host:pid)")

    def handle(self, *, lane: str, verbosity: int, interval: float, batch: bool, max_tasks: int | None,
               backend_name: str, startup_delay: bool, worker_id: str | None, **options) -> None:
        self.configure_logging(verbosity)
        queues, excluded = lane_queues(lane)
        worker = LaneWorker(
            lane=lane, queue_names=queues, excluded_queue_names=excluded, interval=interval, batch=batch,
            backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
            worker_id=worker_id or f"{lane}@{socket.gethostname()}:{os.getpid()}"[:64],
        )
        worker.configure_signals()
        worker.run()
