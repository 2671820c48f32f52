"""Translation jobs on CPU, end to end: the tiny causal model (llm) and a real local OpenAI-compatible server
(endpoint) translate a small English Alpaca set into Swahili, Arabic (right to left) and Simplified Chinese; every
field is protected, translated, translated back, scored and a candidate chosen per (row, language); the report per
language; a translator failing on one row while the rest go on; wrong-language answers never chosen; cancel within
a batch and a retry that asks only what is missing; refusals before anything is stored."""

from __future__ import annotations

import json
import threading
import time

import pytest

from annotation.models import JobStatus
from crossfeed.errors import Conflict, InvalidInput
from tests.translation.fake_translator import CODE, ROWS, SLOW_MARKER
from translation.models import Translation, TranslationJob
from translation.services.execution import translation_job_execute
from translation.services.jobs import (
    outputs_path,
    translation_job_cancel,
    translation_job_create,
    translation_job_retry,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LANGUAGES = ["sw", "ar", "zh-Hans"]


def records(job: TranslationJob) -> list[dict]:
    return [json.loads(line) for line in outputs_path(job).read_text(encoding="utf-8").splitlines()]


def test_two_translators_three_languages_choose_the_good_one_and_report(instruction_set, llm_translator,
                                                                        endpoint_translator, fake_server):
    job = translation_job_create(instruction_set=instruction_set, languages=LANGUAGES,
                                 translators=[llm_translator.id, endpoint_translator.id], quality_threshold=0.9,
                                 enqueue=False)
    # 2 rows x 2 non-empty fields x 3 languages x 2 translators x (forward + back)
    assert job.progress_total == 48
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress_done == 48 and job.failure_count == 0

    chosen = Translation.objects.filter(job=job)
    assert chosen.count() == 6 and all(t.chosen and t.translator_label == "fake-mt" for t in chosen)
    code_row = chosen.get(row__external_id="add", language="ar")
    assert CODE in code_row.fields["output"] and code_row.fields["input"] == ""
    assert code_row.fields["output"].startswith("هذه هي الدالة:")
    assert {c["translator"] for c in code_row.candidates} == {"tiny-llm", "fake-mt"}
    tiny = next(c for c in code_row.candidates if c["translator"] == "tiny-llm")
    assert tiny["score"] < code_row.quality  # the random model's noise scores below the hand-made translation
    sky = chosen.get(row__external_id="sky", language="zh-Hans")
    assert sky.fields["instruction"] == "解释为什么晴天的天空是蓝色的。"

    for code in LANGUAGES:
        report = job.per_language[code]
        assert report["rows"] == 2 and report["chosen_by"] == {"fake-mt": 2} and report["not_acceptable"] == 0
        assert report["post_edited"] == 0 and sum(report["histogram"]) == 2
        assert 0.8 < report["mean_quality"] <= 1
        scores = [t.quality for t in chosen.filter(language=code)]
        assert report["below_threshold"] == sum(score < 0.9 for score in scores)
    assert set(job.throughput) == {"tiny-llm", "fake-mt"}
    assert job.throughput["fake-mt"]["prompts"] == 24 and job.throughput["tiny-llm"]["prompts"] == 24
    masked = [r for r in records(job) if r["key"].endswith("|f") and "|output|" in r["key"] and "r1" in r["key"]]
    assert all("def add" not in r["text"] for r in masked)  # the code block never reached a translator


def test_a_translator_that_times_out_on_one_row_is_recorded_and_the_rest_go_on(instruction_set,
                                                                              endpoint_translator, fake_server):
    fake_server.by_text[SLOW_MARKER] = "slow"
    fake_server.slow_seconds = 3.0
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.failure_count == 1
    failure = job.failures[0]
    assert (failure["external_id"], failure["field"], failure["language"], failure["translator"]) == \
        ("add", "instruction", "sw", "fake-mt")
    add = Translation.objects.get(job=job, row__external_id="add")
    assert not add.chosen and add.flags == ["translator_failed"]
    assert add.candidates[0]["flags"] == ["translator_failed"]
    sky = Translation.objects.get(job=job, row__external_id="sky")
    assert sky.chosen and sky.fields["instruction"].startswith("Eleza")
    assert job.per_language["sw"]["not_acceptable"] == 1 and job.per_language["sw"]["chosen_by"] == {"fake-mt": 1}


def test_an_answer_in_the_wrong_language_is_scored_so_and_never_chosen(instruction_set, endpoint_translator,
                                                                       fake_server):
    fake_server.wrong = {ROWS[0]["output"]}
    job = translation_job_create(instruction_set=instruction_set, languages=["sw", "ar"],
                                 translators=[endpoint_translator.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    for code in ("sw", "ar"):
        sky = Translation.objects.get(job=job, row__external_id="sky", language=code)
        # The output field is a copy of the English (capped at 0.1); the instruction is right: the row is marked.
        assert not sky.chosen and sky.quality < 0.5 and "copy_of_source" in sky.flags
        assert sky.fields["instruction"] != ROWS[0]["instruction"]  # kept for review, never exported
        assert job.per_language[code]["not_acceptable"] == 1 and job.per_language[code]["chosen_by"] == {"fake-mt": 1}


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_within_a_batch_and_retry_asks_only_what_is_missing(instruction_set, endpoint_translator,
                                                                         fake_server):
    endpoint = endpoint_translator.endpoint
    endpoint.timeout_seconds = 30
    endpoint.save()
    fake_server.by_text[SLOW_MARKER] = "slow"
    fake_server.slow_seconds = 3.0
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    worker = threading.Thread(target=translation_job_execute, kwargs={"job_id": job.id})
    worker.start()
    deadline = time.monotonic() + 60
    while not any(SLOW_MARKER in json.dumps(r["body"]) for r in fake_server.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    asked_before = fake_server.count
    assert translation_job_cancel(job=job).cancel_requested
    worker.join(timeout=60)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and "Retry continues" in job.error
    assert fake_server.count == asked_before  # nothing asked after the batch in flight
    done_before = {r["key"] for r in records(job) if not r["error"]}
    assert not Translation.objects.filter(job=job).exists()
    with pytest.raises(Conflict):
        translation_job_cancel(job=job)

    fake_server.by_text.clear()
    job = translation_job_retry(job=job)
    assert job.status == JobStatus.QUEUED
    before = fake_server.count
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert fake_server.count - before == 8 - len(done_before)  # 2 rows x 2 fields x 2 directions, less the kept
    keys = [r["key"] for r in records(job) if not r["error"]]
    assert len(keys) == len(set(keys)) == 8 and job.attempts == 2
    assert Translation.objects.filter(job=job, chosen=True).count() == 2


def test_unknown_languages_and_bad_inputs_are_refused_with_nothing_stored(instruction_set, endpoint_translator):
    cases = [
        ({"languages": ["xx-Nope"]}, "languages", "unknown language"),
        ({"languages": ["en"]}, "languages", "the set's own language"),
        ({"languages": []}, "languages", "non-empty"),
        ({"translators": [999_999]}, "translators", "no translator 999999"),
        ({"translators": [endpoint_translator.id, endpoint_translator.id]}, "translators", "twice"),
        ({"quality_threshold": 1.5}, "quality_threshold", "from 0 to 1"),
        ({"post_edit": {"campaign_name": "x", "overlap": 21}}, "post_edit.overlap", "whole number from 1 to 20"),
        ({"post_edit": {"overlap": 2}}, "post_edit", "campaign_name"),
    ]
    for change, field, words in cases:
        given = {"languages": ["sw"], "translators": [endpoint_translator.id], **change}
        with pytest.raises(InvalidInput, match=words) as caught:
            translation_job_create(instruction_set=instruction_set, enqueue=False, **given)
        assert caught.value.field == field
    assert not TranslationJob.objects.exists()


def test_a_job_whose_worker_went_silent_is_failed_and_the_accelerator_lane_checks_at_start(instruction_set,
                                                                                          endpoint_translator):
    from datetime import timedelta

    from django.utils import timezone

    from crossfeed.jobs.lanes import ACCELERATOR, RECOVER_AT_START
    from translation.services.jobs import translation_jobs_fail_stale

    assert "translation.services.jobs.translation_jobs_fail_stale" in RECOVER_AT_START[ACCELERATOR]
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    TranslationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker="elsewhere:1",
                                                    heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert translation_jobs_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped responding" in job.error and "Retry" in job.error
    assert translation_job_retry(job=job).status == JobStatus.QUEUED
