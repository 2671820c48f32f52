"""Generation jobs through their services: creation (prompts.jsonl, resolved languages), execution on the tiny model
and against a real local OpenAI-compatible server, failures per request, cancel and retry, the machine checks'
choices (off-target kept or dropped, too few usable answers), and what happens when the end goes wrong."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.models import Campaign, Item, JobStatus, Response
from annotation.services.campaigns import campaign_create
from crossfeed.errors import Conflict, InvalidInput
from crossfeed.jobs.lanes import ACCELERATOR, RECOVER_AT_START
from generation.models import GenerationJob
from generation.prompting import INSTRUCTION_TEMPLATE
from generation.services.jobs import (
    generation_job_cancel,
    generation_job_create,
    generation_job_execute,
    generation_job_payload,
    generation_job_retry,
    generation_jobs_fail_stale,
    outputs_path,
    prompts_path,
)

pytestmark = pytest.mark.usefixtures("job_dirs", "one_torch_thread")

TAMIL = ["வானம் நீலமாக உள்ளது", "மழை பெய்கிறது இன்று", "பூனை தூங்குகிறது", "நான் பள்ளிக்கு போகிறேன்"]


def posted(*texts: str, language: str = "sw") -> dict:
    return {"items": [{"external_id": f"p{n}", "text": text, "language": language} for n, text in enumerate(texts)]}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def endpoint_job(endpoint, prompts: dict, *, languages=("ta",), samples: int = 2, echo_prompt: bool = True, **extra):
    """A job of the fake endpoint. echo_prompt: the instruction is the prompt alone, so that the fake server's
    answer ("answer <i>: <prompt>") is in the prompt's language, which the test chooses."""
    job = generation_job_create(generators=[{"endpoint": endpoint.id}], prompts=prompts,
                                response_languages=list(languages), samples_per_generator=samples,
                                campaign=extra.pop("campaign", {"name": "From the endpoint", "overlap": 1}),
                                enqueue=False, **extra)
    if echo_prompt:
        GenerationJob.objects.filter(pk=job.pk).update(instruction_template="{prompt}")
    return job


def requested_prompts(server) -> list[str]:
    return [request["body"]["messages"][-1]["content"] for request in server.requests]


# --- creation ------------------------------------------------------------------------------------------------------


def test_creation_writes_each_prompt_with_its_resolved_languages_and_records_the_instruction(tiny_base, admin_user,
                                                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = generation_job_create(
            generators=[{"base_model": tiny_base.id}], prompts=posted("Habari ya leo?", "Eleza jua."),
            languages_per_prompt=3, params={"seed": 5}, campaign={"name": "Round 2", "overlap": 2},
            created_by=admin_user)
    assert len(callbacks) == 1  # queued after commit
    assert job.status == JobStatus.QUEUED and job.instruction_template == INSTRUCTION_TEMPLATE
    assert job.generators == [{"base_model": tiny_base.id, "label": "tiny"}]
    assert job.params == {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 256, "seed": 5}
    written = lines(prompts_path(job))
    assert [p["external_id"] for p in written] == ["p0", "p1"]
    for prompt in written:
        # The default: 3 of the feedback languages other than Swahili, the same on every resolution.
        assert len(prompt["response_languages"]) == 3 and "sw" not in prompt["response_languages"]
    assert job.progress_total == 6 and job.campaign is None and job.campaign_name == "Round 2"


def test_prompts_from_a_campaign_are_its_distinct_prompts(tiny_base, campaign, import_items):
    from tests.conftest import item_line

    import_items(campaign, [item_line("a-ta", response_lang="ta", prompt="Same prompt"),
                            item_line("a-hi", response_lang="hi", prompt="Same prompt", pivot=False),
                            item_line("a-am", response_lang="am", prompt="Same prompt", pivot=False),
                            item_line("b-ta", response_lang="ta", prompt="Other prompt")])
    job = generation_job_create(generators=[{"base_model": tiny_base.id}], prompts={"campaign": campaign.id},
                                response_languages={"sw": ["am"]}, campaign={"id": campaign.id}, enqueue=False)
    written = lines(prompts_path(job))
    assert [(p["external_id"], p["text"], p["response_languages"]) for p in written] == [
        ("a-ta", "Same prompt", ["am"]), ("a-hi", "Same prompt", ["am"]), ("b-ta", "Other prompt", ["am"])]
    assert written[0]["pivot"] == {"text": "Pivot of a-ta", "language": "en"} and written[1]["pivot"] is None
    assert job.source_campaign == campaign and job.campaign == campaign


def test_a_campaign_name_is_refused_while_another_unfinished_job_means_to_make_it(tiny_base):
    arguments = {"generators": [{"base_model": tiny_base.id}], "prompts": posted("Habari?"),
                 "response_languages": ["ta"], "campaign": {"name": "Next"}, "enqueue": False}
    first = generation_job_create(**arguments)
    with pytest.raises(InvalidInput, match=f"generation job {first.id}") as refused:
        generation_job_create(**{**arguments, "campaign": {"name": "NEXT"}})
    assert refused.value.field == "campaign"
    GenerationJob.objects.filter(pk=first.pk).update(status=JobStatus.FAILED)
    assert generation_job_create(**arguments).campaign_name == "Next"  # a failed job holds no name


# --- the tiny model, end to end ----------------------------------------------------------------------------------


def test_a_job_on_the_tiny_model_makes_checked_items_in_a_new_campaign(tiny_base, admin_user):
    job = generation_job_create(
        generators=[{"base_model": tiny_base.id}], prompts=posted("Habari ya leo?", "Eleza kwa nini anga ni buluu."),
        response_languages=["ta", "hi"], samples_per_generator=3, params={"max_new_tokens": 12, "seed": 3},
        campaign={"name": "Generated", "overlap": 2}, created_by=admin_user, enqueue=False)
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total, job.attempts) == (4, 4, 1)
    assert len(lines(outputs_path(job))) == 4 * 3  # every sample of every request, as it came
    campaign = Campaign.objects.get(name="Generated")
    assert job.campaign == campaign and campaign.status == Campaign.Status.ACTIVE and campaign.overlap == 2
    assert job.items_created + job.skipped_count == 4 and job.items_created >= 1
    item = Item.objects.filter(campaign=campaign).first()
    assert item.external_id.endswith(f":g{job.id}") and item.metadata["generation_job"] == job.id
    response = item.responses.first()
    assert response.model_name == "tiny" and response.language_id == item.response_language_id
    metadata = response.metadata
    assert metadata["generator"] == "tiny" and metadata["job"] == job.id and metadata["params"] == job.params
    assert metadata["instruction"].startswith("{prompt}") and "Please answer in" in metadata["instruction"]
    assert job.responses_created == Response.objects.filter(item__campaign=campaign).count()
    throughput = generation_job_payload(job)["throughput"]
    assert throughput["per_generator"]["tiny"]["prompts"] == 4 and throughput["tokens_per_second"] > 0


# --- an endpoint: failures per request ----------------------------------------------------------------------------


def test_an_endpoint_that_times_out_or_answers_garbage_fails_those_prompts_and_the_others_finish(fake_endpoint,
                                                                                                fake_server):
    fake_server.by_text.update({"SLOW-PROMPT": "slow", "JUNK-PROMPT": "garbage"})
    fake_server.slow_seconds = 3.0  # the endpoint's timeout is 1 s, with no retries
    job = endpoint_job(fake_endpoint, posted(TAMIL[0], "SLOW-PROMPT", TAMIL[1], "JUNK-PROMPT", TAMIL[2]))
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.failure_count == 2 and {f["external_id"] for f in job.failures} == {"p1", "p3"}
    assert all(f["generator"] == "fake" and f["language"] == "ta" for f in job.failures)
    assert job.items_created == 3 and job.responses_created == 6
    assert {s["external_id"] for s in job.skipped} == {f"p1:ta:g{job.id}", f"p3:ta:g{job.id}"}
    assert all("2 failed" in s["reason"] for s in job.skipped)
    response = Response.objects.filter(item__external_id=f"p0:ta:g{job.id}").first()
    assert response.text == f"answer 0: {TAMIL[0]}" and response.detected_language == "ta"
    assert response.detected_confidence is not None and response.model_name == "fake"


# --- cancel and retry -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_within_one_batch_and_retry_asks_only_what_is_missing(fake_endpoint, fake_server):
    # One request at a time: a batch is one request. The second prompt's answer takes 5 s, time enough to cancel
    # while it is in flight; the job must stop when it comes back.
    fake_server.by_text["HOLD-ME"] = "slow"
    fake_server.slow_seconds = 5.0
    fake_endpoint.timeout_seconds = 30
    fake_endpoint.save()
    texts = [TAMIL[0], "HOLD-ME " + TAMIL[1], TAMIL[2], TAMIL[3], TAMIL[0] + " 2", TAMIL[1] + " 2"]
    job = endpoint_job(fake_endpoint, posted(*texts))
    worker = threading.Thread(target=generation_job_execute, kwargs={"job_id": job.id})
    worker.start()
    deadline = time.monotonic() + 60
    while fake_server.count < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert generation_job_cancel(job=job).cancel_requested
    worker.join(timeout=60)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and "Retry continues" in job.error
    assert fake_server.count == 2 and job.progress_done == 2 and job.items_created == 0
    assert not Campaign.objects.filter(name="From the endpoint").exists()
    with pytest.raises(Conflict):
        generation_job_cancel(job=job)

    fake_server.by_text.clear()
    job = generation_job_retry(job=job)
    assert job.status == JobStatus.QUEUED
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    asked = requested_prompts(fake_server)
    assert sorted(asked) == sorted(texts)  # every prompt asked once: none asked again by the retry
    assert len(lines(outputs_path(job))) == len(texts) * 2 and job.attempts == 2
    assert job.items_created == len(texts) and job.progress_done == len(texts)


def test_retry_is_refused_for_a_job_that_did_not_fail(tiny_base):
    job = generation_job_create(generators=[{"base_model": tiny_base.id}], prompts=posted("Habari?"),
                                response_languages=["ta"], campaign={"name": "X"}, enqueue=False)
    with pytest.raises(Conflict, match="only failed or cancelled"):
        generation_job_retry(job=job)
    assert generation_job_cancel(job=job).status == JobStatus.CANCELLED  # queued: cancelled at once
    assert generation_job_execute(job_id=job.id).status == JobStatus.CANCELLED  # a worker leaves it alone


# --- machine checks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("off_target, items, skipped", [("keep", 2, 0), ("drop", 1, 1)])
def test_off_target_answers_are_kept_with_their_detection_or_dropped(fake_endpoint, off_target, items, skipped):
    # The fake server echoes the prompt: the English one is answered in English where Tamil was asked.
    job = endpoint_job(fake_endpoint, posted(TAMIL[0], "Why is the sky blue on a clear day?"), off_target=off_target)
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.items_created, job.skipped_count, job.off_target_count) == (items, skipped, 2)
    english = Response.objects.filter(item__external_id=f"p1:ta:g{job.id}")
    if off_target == "keep":
        assert {r.detected_language for r in english} == {"en"}
    else:
        assert not english.exists()
        assert job.skipped == [{"external_id": f"p1:ta:g{job.id}",
                                "reason": "0 usable answer(s) of 2, 2 needed (2 off-target)"}]


def test_a_pair_with_fewer_than_two_usable_answers_is_skipped_and_reported(fake_endpoint):
    # One sample per prompt: one answer each, never two.
    job = endpoint_job(fake_endpoint, posted(TAMIL[0], TAMIL[1]), samples=1)
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.FAILED and "no (prompt, response language) pair got 2 usable" in job.error
    assert job.skipped_count == 2 and job.skipped[0]["reason"] == "1 usable answer(s) of 1, 2 needed"
    assert not Campaign.objects.filter(name="From the endpoint").exists() and not Item.objects.exists()


def test_duplicates_are_merged_into_the_first_answer(fake_endpoint, fake_server):
    from generation.models import Endpoint

    twin = Endpoint.objects.create(name="twin", base_url=fake_server.base_url, model="m", timeout_seconds=5,
                                   max_retries=0, concurrency=1)
    job = generation_job_create(generators=[{"endpoint": fake_endpoint.id}, {"endpoint": twin.id}],
                                prompts=posted(TAMIL[0]), response_languages=["ta"], samples_per_generator=2,
                                campaign={"name": "Twins"}, enqueue=False)
    GenerationJob.objects.filter(pk=job.pk).update(instruction_template="{prompt}")
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.duplicates_merged == 2 and job.responses_created == 2  # the twin said the same, word for word
    first = Response.objects.get(item__campaign__name="Twins", position=0)
    assert first.metadata["merged"] == [{"generator": "twin", "sample": 0}]


# --- the end going wrong ---------------------------------------------------------------------------------------


def test_a_campaign_name_taken_while_the_job_ran_fails_it_clearly_and_stores_nothing(fake_endpoint, admin_user):
    job = endpoint_job(fake_endpoint, posted(TAMIL[0]))
    taken = campaign_create(name="From the endpoint", created_by=admin_user)
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.FAILED and "was made by someone else while the job ran" in job.error
    assert not Item.all_objects.filter(campaign=taken).exists() and job.campaign is None


def test_an_import_that_fails_leaves_no_item_and_deletes_the_campaign_the_job_made(fake_endpoint, monkeypatch):
    from django.db import OperationalError

    def broken_publish(*args, **kwargs):
        raise OperationalError("disk I/O error")  # the database fails at the import's last step

    monkeypatch.setattr("annotation.services.imports._publish", broken_publish)
    job = endpoint_job(fake_endpoint, posted(TAMIL[0], TAMIL[1]))
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.FAILED and "disk I/O error" in job.error
    assert not Item.all_objects.exists() and not Campaign.objects.filter(name="From the endpoint").exists()
    assert job.campaign is None
    monkeypatch.undo()
    job = generation_job_execute(job_id=generation_job_retry(job=job).id)
    assert job.status == JobStatus.SUCCEEDED and job.items_created == 2  # and the retry makes it after all


def test_an_item_annotators_worked_on_is_not_changed_and_nothing_of_the_job_is_stored(fake_endpoint, campaign,
                                                                                     import_items, annotator):
    from annotation.services.assignment import lease_next
    from tests.conftest import item_line

    job = endpoint_job(fake_endpoint, posted(TAMIL[0], TAMIL[1]), campaign={"id": campaign.id})
    import_items(campaign, [item_line(f"p0:ta:g{job.id}")])  # the same id, other content, and leased below
    assert lease_next(annotator=annotator, campaign=campaign) is not None
    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.FAILED and "already has judgments or leases" in job.error
    assert list(Item.all_objects.filter(campaign=campaign).values_list("external_id", flat=True)) == [
        f"p0:ta:g{job.id}"]
    assert Campaign.objects.filter(pk=campaign.pk).exists()  # not the job's to delete


# --- workers that die -----------------------------------------------------------------------------------------


def test_a_silent_or_dead_worker_leaves_the_job_failed_and_retry_queues_it(tiny_base):
    job = generation_job_create(generators=[{"base_model": tiny_base.id}], prompts=posted("Habari?"),
                                response_languages=["ta"], campaign={"name": "X"}, enqueue=False)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker="gpu-7:4242", attempts=1,
                                                   heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert generation_jobs_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "gpu-7:4242 stopped responding" in job.error
    assert generation_job_retry(job=job).status == JobStatus.QUEUED

    import socket

    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(),
                                                   worker=f"{socket.gethostname()}:{2**22 + 7}")
    assert generation_jobs_fail_stale() == 1  # no such process on this host: at once, not 10 minutes later
    assert "ended while the job ran" in GenerationJob.objects.get(pk=job.pk).error
    assert "generation.services.jobs.generation_jobs_fail_stale" in RECOVER_AT_START[ACCELERATOR]
