"""One lifecycle for the jobs a worker runs in batches with a heartbeat (generation and translation jobs): claim,
progress and heartbeat, stop between batches, cancel, retry and fail the stale ones. Each app's services name the
model, the words ("generation job", what is kept) and the enqueue function; the rules are the same for all of them.

The job models have `status` (JobStatus), `attempts`, `worker` ("host:pid"), `heartbeat_at`, `started_at`,
`finished_at`, `cancel_requested`, `error`, `progress_done`, `progress_total`, `failures`, `failure_count` and
`throughput`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from crossfeed.errors import Conflict
from crossfeed.jobs.shutdown import stop_requested
from crossfeed.jobs.status import JobStatus

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


class JobFailed(Exception):
    """The job cannot finish, for a reason a person can act on (`message`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Stop:
    """Why a job stopped before its end."""

    CANCEL = "cancel"
    WORKER_STOPPED = "worker stopped"
    TAKEN_OVER = "taken over"


@dataclass(frozen=True)
class Attempt:
    """This worker's claim on a job: the job is its own while it is running with this attempt number."""

    model: type[models.Model]
    job_id: int
    number: int

    def owned(self) -> models.QuerySet:
        return self.model._default_manager.filter(pk=self.job_id, status=JobStatus.RUNNING, attempts=self.number)


@dataclass
class Tracker:
    """Progress, failures and throughput of one attempt, written to the job's row at most every HEARTBEAT_SECONDS
    (and when forced); the apps' trackers add how a batch's outputs are counted (`record`)."""

    attempt: Attempt
    total: int
    done: int
    throughput: dict[str, dict] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    failure_count: int = 0
    last_beat: float = 0.0
    stop_reason: str | None = None

    def owned(self) -> models.QuerySet:
        return self.attempt.owned()

    def beat_if_due(self) -> None:
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.beat()

    def add_throughput(self, label: str, measured: Any) -> None:
        """Add a backend's Throughput to the label's sum over the attempts."""
        before = self.throughput.get(label, {})
        total = type(measured)(prompts=before.get("prompts", 0), outputs=before.get("outputs", 0),
                               new_tokens=before.get("new_tokens", 0), seconds=before.get("seconds", 0.0))
        total.add(measured)
        self.throughput[label] = total.as_dict()

    def beat(self) -> bool:
        """Write the progress; False when the job is no longer this attempt's."""
        self.last_beat = time.monotonic()
        return bool(self.owned().update(
            progress_done=min(self.done, self.total), progress_total=self.total, failures=self.failures,
            failure_count=self.failure_count, throughput=self.throughput, heartbeat_at=timezone.now(),
        ))

    def should_stop(self) -> bool:
        """Asked by the backend between batches: one indexed read of the job's row."""
        if stop_requested.is_set():
            self.stop_reason = Stop.WORKER_STOPPED
        else:
            row = self.owned().values_list("cancel_requested", flat=True).first()
            if row is None:
                self.stop_reason = Stop.TAKEN_OVER
            elif row:
                self.stop_reason = Stop.CANCEL
        return self.stop_reason is not None


    def stopped_outcome(self, kept: str) -> tuple[str, str] | None:
        """After a stop between batches: write the progress, then the job's end for the reason (None: taken over,
        the row is no longer this attempt's to write)."""
        self.beat()
        if self.stop_reason == Stop.CANCEL:
            return JobStatus.CANCELLED, f"cancelled; {kept}"
        if self.stop_reason == Stop.WORKER_STOPPED:
            return JobStatus.FAILED, f"the worker was stopped (a restart or shutdown of the worker); {kept}"
        return None


def job_execute(*, model: type[models.Model], job_id: int, label: str, kept: str, kept_sentence: str,
                body: Callable[[Any, Attempt], tuple[str, str] | None],
                queryset: models.QuerySet | None = None) -> Any:
    """Claim a queued job and run `body` to its end: the job ends succeeded, failed or cancelled, with the reason
    `body` returns (None: someone else marked the job meanwhile, nothing more is written).

    label: "generation job"; kept: what the error says is kept ("the outputs so far are kept and Retry continues
    after them"), kept_sentence: the same as a sentence."""
    now = timezone.now()
    # A conditional UPDATE claims the job: of two workers handed the same task, only one gets a row count of 1.
    claimed = model._default_manager.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}", cancel_requested=False, error="", failures=[],
        failure_count=0,
    )
    job = (queryset if queryset is not None else model._default_manager).get(pk=job_id)
    if not claimed:
        logger.info("%s %s is %s, not queued: not running it", label, job_id, job.status)
        return job
    attempt = Attempt(model, job.pk, job.attempts)
    try:
        outcome = body(job, attempt)
    except JobFailed as exc:
        outcome = (JobStatus.FAILED, exc.message)
    except Exception as exc:  # a bug, a missing model, the database: the job must not stay "running"
        logger.exception("%s %s crashed in the worker", label, job_id)
        outcome = (JobStatus.FAILED, f"{type(exc).__name__}: {exc}. {kept_sentence}")
    except BaseException:  # the worker exits at once (a second SIGTERM)
        with contextlib.suppress(Exception):
            attempt.owned().update(status=JobStatus.FAILED, finished_at=timezone.now(),
                                   error=f"the worker was stopped while the job ran; {kept}")
        raise
    if outcome is None:
        logger.warning("%s %s was marked by someone else while attempt %s ran (stale check?): nothing more is "
                       "written", label, job_id, attempt.number)
    else:
        status, error = outcome
        attempt.owned().update(status=status, error=error, finished_at=timezone.now())
    job.refresh_from_db()
    return job


@transaction.atomic
def job_cancel(*, job: Any, label: str) -> Any:
    """A queued job is cancelled at once; a running one is asked to stop (`cancel_requested`) after its batch."""
    jobs = type(job)._default_manager
    now = timezone.now()
    if not jobs.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=now, error="cancelled before it started"
    ) and not jobs.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True):
        raise Conflict(f"{label} {job.pk} is {job.get_status_display()}: there is nothing to cancel")
    job.refresh_from_db()
    return job


@transaction.atomic
def job_retry(*, job: Any, label: str, enqueue: Callable[[Any], None]) -> Any:
    """Queue a failed or cancelled job again with `enqueue`."""
    if not type(job)._default_manager.filter(pk=job.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED, error="", cancel_requested=False, finished_at=None
    ):
        raise Conflict(f"{label} {job.pk} is {job.get_status_display()}: only failed or cancelled jobs can be "
                       "retried")
    job.refresh_from_db()
    enqueue(job)
    return job


def jobs_fail_stale(*, model: type[models.Model], kept: str, now: datetime | None, stale_after: timedelta) -> int:
    """Fail the running jobs whose worker is gone, with the reason and `kept` (what is kept for Retry).

    Gone: no heartbeat for `stale_after`, or at once when the worker ran on this host and its process no longer
    exists (killed, out of memory; the accelerator lane runs this when its worker starts)."""
    now = now or timezone.now()
    jobs = model._default_manager
    count = 0
    for job in jobs.filter(status=JobStatus.RUNNING):
        dead = worker_gone(job.worker)
        silent = job.heartbeat_at is not None and job.heartbeat_at < now - stale_after
        if not (dead or silent):
            continue
        if dead:
            reason = f"the worker {job.worker} ended while the job ran (killed or crashed)"
        else:
            reason = (f"the worker {job.worker} stopped responding (no heartbeat since "
                      f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)")
        # Only this attempt, and only if it is still silent: a worker that beat meanwhile keeps its job.
        marked = jobs.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)
        if not dead:
            marked = marked.filter(heartbeat_at__lt=now - stale_after)
        count += marked.update(status=JobStatus.FAILED, finished_at=now, error=f"{reason}; {kept}")
    return count


def worker_gone(worker: str) -> bool:
    """True when the worker ("host:pid") ran on this host and its process no longer exists; another host's process
    cannot be checked from here (its heartbeat tells)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False
