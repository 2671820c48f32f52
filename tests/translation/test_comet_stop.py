"""A cancel or a worker stop is noticed while COMET-Kiwi scores, not only between translation batches: comet_score
asks `should_stop` every POLL_SECONDS while its worker runs, kills the worker and raises CometStopped, and a job
stopped there stores nothing of the scoring and ends as after a stop between batches (outputs kept, Retry goes on).
Real tiny COMET environment (test_comet_score.py's `comet_env`, built once into var/test-cache/comet), hence
`slow`."""

from __future__ import annotations

import time

import psutil
import pytest

from annotation.models import JobStatus
from tests.translation.test_comet_score import comet_env  # noqa: F401 - the shared session fixture
from translation.backends import comet_score as scoring
from translation.models import Translation
from translation.services import choice
from translation.services.execution import KEPT, translation_job_execute
from translation.services.jobs import (
    outputs_path,
    translation_job_cancel,
    translation_job_create,
    translation_job_retry,
)

# Three chunks of CHUNK pairs: the worker loads the model (about 12 s on a 2-core CPU), then scores each chunk.
PAIRS = [(f"Explain why the sky is blue on day {day}.", f"Eleza kwa nini anga ni la buluu siku {day}.")
         for day in range(3 * scoring.CHUNK)]


def _workers() -> set[int]:
    """This process's children running the COMET worker (comet_score.py run by path)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any(part.endswith("comet_score.py") for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # gone meanwhile, or a zombie: not a running worker
            continue
    return found


@pytest.mark.slow
def test_a_stop_asked_while_comet_scores_kills_the_worker_and_a_false_one_changes_nothing(comet_env):  # noqa: F811
    python, model = comet_env
    config = scoring.CometConfig(str(python), str(model))

    started = time.monotonic()
    progress: list[int] = []
    expected = scoring.comet_score(config, PAIRS, on_progress=progress.append)
    full_seconds = time.monotonic() - started
    assert progress == [256, 512, 768] and len(expected) == len(PAIRS)

    polls: list[int] = []  # the chunks done when each poll came

    def never() -> bool:
        polls.append(len(progress))
        return False

    progress.clear()
    assert scoring.comet_score(config, PAIRS, on_progress=progress.append, should_stop=never) == expected
    assert progress == [256, 512, 768]
    # Asked also while the worker loaded the model and printed nothing (loading takes several POLL_SECONDS).
    assert len(polls) >= 2 and polls[0] == 0

    asked, running = [], set()

    def at_once() -> bool:
        asked.append(time.monotonic())
        running.update(_workers())
        return True

    started = time.monotonic()
    progress.clear()
    with pytest.raises(scoring.CometStopped, match="was stopped after 768 pairs"):
        scoring.comet_score(config, PAIRS, on_progress=progress.append, should_stop=at_once)
    stopped_seconds = time.monotonic() - started
    assert len(asked) == 1 and asked[0] - started >= scoring.POLL_SECONDS * 0.9  # the first poll, not before it
    assert running, "the worker was running when the stop was asked"
    # Killed and waited for: no worker left, not even a zombie (pid_exists is true for one).
    assert not _workers() and not any(psutil.pid_exists(pid) for pid in running)
    # A generous bound: the stop lands about POLL_SECONDS in, the whole scoring takes several times that.
    assert stopped_seconds < full_seconds / 2, (stopped_seconds, full_seconds)


@pytest.mark.slow
def test_a_job_cancelled_while_comet_scores_ends_cancelled_with_nothing_stored_and_retry_finishes_it(
        comet_env, settings, instruction_set, endpoint_translator, fake_server, monkeypatch):  # noqa: F811
    python, model = comet_env
    settings.COMET_PYTHON, settings.COMET_MODEL = str(python), str(model)
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)

    # The cancel must land while COMET scores, deterministically: the first time the scorer asks should_stop, the
    # test cancels the job through the service (cancel_requested on the row, as the Cancel button does) and then
    # asks the job's own should_stop — the tracker's, which reads cancel_requested from the database and is what
    # stops the scorer. The wrapper only adds the cancel; it never answers True itself.
    real = choice.comet_score
    cancels: list[bool] = []

    def cancel_while_scoring(config, pairs, *, should_stop=None, **kwargs):  # noqa: ANN001, ANN202
        if should_stop is None:  # the code before the fix: cancelled as scoring starts, it scored to the end
            cancels.append(translation_job_cancel(job=job).cancel_requested)
            return real(config, pairs, **kwargs)

        def polled() -> bool:
            if not cancels:
                cancels.append(translation_job_cancel(job=job).cancel_requested)
            return should_stop()

        return real(config, pairs, should_stop=polled, **kwargs)

    monkeypatch.setattr(choice, "comet_score", cancel_while_scoring)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.CANCELLED, (job.status, job.error)
    assert cancels == [True]
    assert job.error == f"cancelled; {KEPT}"
    assert not Translation.objects.filter(job=job).exists() and not job.per_language
    assert not _workers()
    requests = fake_server.count
    kept = outputs_path(job).read_text().splitlines()
    assert requests > 0 and len(kept) == job.progress_total == job.progress_done  # every translation kept

    monkeypatch.undo()
    translation_job_retry(job=job)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert fake_server.count == requests, "Retry translated nothing again: the outputs were kept"
    scorer = f"comet-kiwi:{model.name}"
    assert job.per_language["sw"]["scorer"] == scorer and job.per_language["sw"]["scorer_error"] == ""
    translations = Translation.objects.filter(job=job)
    assert translations.count() == 2
    assert all("comet_kiwi" in t.components and c["scorer"] == scorer for t in translations for c in t.candidates)
