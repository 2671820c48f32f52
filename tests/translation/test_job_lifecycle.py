"""The one job lifecycle (crossfeed/jobs/lifecycle.py) that generation and translation jobs share: the claim by a
conditional UPDATE, the stop between batches (cancel, taken over), the end written only by the attempt that owns the
job, cancel and retry with the app's words, on a real translation job."""

from __future__ import annotations

import os
import socket

import pytest

from annotation.models import JobStatus
from crossfeed.errors import Conflict
from crossfeed.jobs.lifecycle import JobFailed, Stop, Tracker, job_cancel, job_execute, job_retry
from generation.services.assembly import JobFailed as AssemblyJobFailed
from translation.models import TranslationJob
from translation.services.jobs import translation_job_create

KEPT = "the translations so far are kept and Retry continues after them"


@pytest.fixture
def job(instruction_set, endpoint_translator) -> TranslationJob:
    return translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                  translators=[endpoint_translator.id], enqueue=False)


def run(job_id: int, body):  # noqa: ANN001, ANN201
    return job_execute(model=TranslationJob, job_id=job_id, label="translation job", kept=KEPT,
                       kept_sentence="Kept.", body=body)


def test_the_claim_runs_a_queued_job_once_and_the_owner_writes_its_end(job):
    seen = []

    def body(claimed, attempt):  # noqa: ANN001, ANN202
        seen.append((claimed.status, claimed.attempts, claimed.worker))
        tracker = Tracker(attempt=attempt, total=4, done=2)
        assert tracker.beat() and not tracker.should_stop()
        return JobStatus.SUCCEEDED, ""

    finished = run(job.pk, body)
    assert seen == [(JobStatus.RUNNING, 1, f"{socket.gethostname()}:{os.getpid()}")]
    assert finished.status == JobStatus.SUCCEEDED and finished.progress_done == 2 and finished.finished_at
    assert run(job.pk, body).status == JobStatus.SUCCEEDED and len(seen) == 1  # not queued: not run again


def test_a_cancel_request_stops_between_batches_and_a_job_failed_ends_with_its_message(job):
    assert JobFailed is AssemblyJobFailed  # the apps raise the lifecycle's own

    def cancelled(claimed, attempt):  # noqa: ANN001, ANN202
        assert job_cancel(job=claimed, label="translation job").cancel_requested
        tracker = Tracker(attempt=attempt, total=1, done=0)
        assert tracker.should_stop() and tracker.stop_reason == Stop.CANCEL
        return tracker.stopped_outcome(KEPT)

    ended = run(job.pk, cancelled)
    assert ended.status == JobStatus.CANCELLED and ended.error == f"cancelled; {KEPT}"
    with pytest.raises(Conflict, match=f"translation job {job.pk} is cancelled: there is nothing to cancel"):
        job_cancel(job=ended, label="translation job")

    queued = []
    assert job_retry(job=ended, label="translation job", enqueue=queued.append).status == JobStatus.QUEUED
    assert queued == [ended]

    def failing(claimed, attempt):  # noqa: ANN001, ANN202, ARG001
        raise JobFailed("the translator 'x' was deleted after the job was created")

    ended = run(job.pk, failing)
    assert ended.status == JobStatus.FAILED and ended.attempts == 2
    assert ended.error == "the translator 'x' was deleted after the job was created"


def test_a_job_taken_over_is_not_written_by_the_attempt_that_lost_it(job):
    def taken_over(claimed, attempt):  # noqa: ANN001, ANN202
        # Another worker's attempt (the stale check failed this one, then a retry was claimed).
        TranslationJob.objects.filter(pk=claimed.pk).update(attempts=attempt.number + 1)
        tracker = Tracker(attempt=attempt, total=1, done=1)
        assert not tracker.beat()
        assert tracker.should_stop() and tracker.stop_reason == Stop.TAKEN_OVER
        return tracker.stopped_outcome(KEPT)

    ended = run(job.pk, taken_over)
    assert ended.status == JobStatus.RUNNING and ended.attempts == 2 and ended.error == ""
