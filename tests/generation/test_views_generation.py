"""The generation pages (Django test client): who may see them, the new-job form, the job page (progress polling,
throughput, counts, skipped and failures, Cancel and Retry, escaped model output), Next round from the training run
page and from the admin, and the lineage page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotation.models import Campaign, JobStatus
from generation.models import GenerationJob
from tests.conftest import PASSWORD
from tests.generation.round_chain import (
    campaign_with_items,
    evaluation,
    judge_all,
    next_round_job,
    plain_base_model,
    succeeded_export,
    succeeded_run,
)
from training.models import TrainingRun

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def staff(client, admin_user) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def first(db, tmp_path, admin_user):
    base = plain_base_model(tmp_path / "plain-model")
    campaign = campaign_with_items("Demo", ["p-1", "p-2"], created_by=admin_user)
    run, version = succeeded_run(base=base, export=succeeded_export(campaign), name="demo-dpo-1",
                                 adapters=tmp_path / "adapters")
    return campaign, run, version


@pytest.fixture
def job(first) -> GenerationJob:
    """A next-round job, running, with figures as the worker writes them (markup in what came from outside)."""
    _campaign, run, version = first
    return GenerationJob.objects.create(
        training_run=run, status=JobStatus.RUNNING, campaign_name="Demo — round 2", progress_done=3,
        progress_total=8, generators=[{"model_version": version.pk, "label": "demo-dpo-1"}],
        throughput={"demo-dpo-1": {"prompts": 3, "outputs": 3, "new_tokens": 120, "seconds": 2.0,
                                   "prompts_per_second": 1.5, "tokens_per_second": 60.0}},
        skipped=[{"external_id": "p-2:ta:g1", "reason": "1 usable candidate of 2 <b>needed</b>"}], skipped_count=1,
        failures=[{"external_id": "p-1", "generator": "endpoint", "message": f"garbage: {XSS}"}], failure_count=1,
    )


def test_it_sends_anonymous_people_to_the_login_page(client, db):
    response = client.get(reverse("generation:jobs"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", ["jobs", "job_new"])
def test_annotators_and_staff_without_permissions_get_403(client, annotator, name):
    client.force_login(annotator)
    assert client.get(reverse(f"generation:{name}")).status_code == 403
    bare_staff = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True)
    client.force_login(bare_staff)
    assert client.get(reverse(f"generation:{name}")).status_code == 403


def test_annotators_cannot_open_a_job_act_on_it_or_read_a_lineage(client, annotator, job, first):
    client.force_login(annotator)
    assert client.get(reverse("generation:job", args=[job.id])).status_code == 403
    assert client.post(reverse("generation:job_cancel", args=[job.id])).status_code == 403
    assert client.get(reverse("generation:lineage", args=[first[0].id])).status_code == 403
    assert client.post(reverse("generation:next_round", args=[first[1].id])).status_code == 403
    job.refresh_from_db()
    assert not job.cancel_requested and GenerationJob.objects.count() == 1


def test_staff_see_the_jobs_and_the_navigation_link(staff, job):
    page = staff.get(reverse("generation:jobs")).content.decode()
    assert reverse("generation:job", args=[job.id]) in page and "Demo — round 2" in page
    assert f'href="{reverse("generation:jobs")}"' in page, "the staff navigation links to the generation pages"
    assert reverse("generation:job_new") in page


def test_the_form_offers_every_generator_and_the_feedback_languages_by_default(staff, first):
    response = staff.get(reverse("generation:job_new"))
    assert response.status_code == 200
    form = response.context["form"]
    assert len(form.initial["response_languages"]) == 30
    page = response.content.decode()
    assert "demo-dpo-1" in page and "plain" in page and 'enctype="multipart/form-data"' in page


def test_the_form_creates_a_job_from_an_uploaded_prompt_file(staff, first, admin_user):
    _campaign, _run, version = first
    upload = SimpleUploadedFile("prompts.jsonl", b'{"external_id": "q1", "text": "Habari?", "language": "sw"}\n'
                                                 b'{"external_id": "q2", "text": "Bonjour ?", "language": "fr", '
                                                 b'"pivot": {"text": "Hello?", "language": "en"}}\n')
    response = staff.post(reverse("generation:job_new"), {
        "model_versions": [version.id], "base_models": [version.base_model_id], "prompt_file": upload,
        "response_languages": ["ta", "hi"], "languages_per_prompt": "1", "samples_per_generator": "2",
        "temperature": "0.5", "max_new_tokens": "64", "seed": "7", "target": "new", "campaign_name": "Round X",
        "campaign_overlap": "2", "off_target": "drop"})
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("generation:job", args=[job.id])
    assert [g["label"] for g in job.generators] == ["plain", "demo-dpo-1"]
    assert job.prompt_source == {"items": 2} and job.response_languages == ["ta", "hi"]
    assert job.languages_per_prompt == 1 and job.samples_per_generator == 2 and job.off_target == "drop"
    assert job.params["temperature"] == 0.5 and job.params["max_new_tokens"] == 64 and job.params["seed"] == 7
    assert (job.campaign_name, job.campaign_overlap, job.created_by) == ("Round X", 2, admin_user)


def test_the_form_adds_to_an_existing_campaign_with_the_default_languages(staff, first):
    campaign, _run, version = first
    response = staff.post(reverse("generation:job_new"), {
        "model_versions": [version.id], "prompt_campaign": campaign.id, "samples_per_generator": "1",
        "target": "existing", "campaign": campaign.id, "off_target": "keep",
        "response_languages": response_languages_default()})
    assert response.status_code == 302, response.context["form"].errors
    job = GenerationJob.objects.get()
    assert job.campaign == campaign and job.response_languages in ([], None), "the default: not a list"


def response_languages_default() -> list[str]:
    from annotation.languages import feedback_languages

    return [spec.code for spec in feedback_languages()]


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"model_versions": []}, "base_models", "at least one generator"),
    ({"campaign_name": "Demo"}, "campaign_name", "already exists"),
    ({"prompt_campaign": ""}, "prompt_campaign", "or upload a file"),
    ({"temperature": "3"}, "temperature", "2"),
])
def test_the_form_shows_each_problem_on_its_field_and_stores_nothing(staff, first, change, field, words):
    campaign, _run, version = first
    data = {"model_versions": [version.id], "prompt_campaign": campaign.id, "samples_per_generator": "1",
            "target": "new", "campaign_name": "New one", "off_target": "keep", **change}
    response = staff.post(reverse("generation:job_new"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field]), errors
    assert GenerationJob.objects.count() == 0


def test_an_uploaded_file_that_is_not_json_lines_is_refused_with_its_line(staff, first):
    _campaign, _run, version = first
    upload = SimpleUploadedFile("prompts.jsonl", b'{"external_id": "q1", "text": "a", "language": "sw"}\n[1]\n')
    response = staff.post(reverse("generation:job_new"), {
        "model_versions": [version.id], "prompt_file": upload, "samples_per_generator": "1", "target": "new",
        "campaign_name": "X", "off_target": "keep"})
    assert response.status_code == 400 and "Line 2" in " ".join(response.context["form"].errors["prompt_file"])


def test_the_job_page_shows_progress_throughput_counts_skipped_and_failures_escaped(staff, job):
    response = staff.get(reverse("generation:job", args=[job.id]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "3 of 8 prompts (37.5%)" in page and 'value="37.5"' in page
    assert 'hx-trigger="every 2s"' in page, "a running job's status polls"
    assert '<td>demo-dpo-1</td><td>3</td><td>120</td><td>2.0</td><td>1.50</td><td>60.0</td>' in page
    assert "p-2:ta:g1" in page and "1 usable candidate of 2 &lt;b&gt;needed&lt;/b&gt;" in page
    assert "<script>window.__xss" not in page and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert reverse("generation:job_cancel", args=[job.id]) in page
    assert reverse("generation:job_retry", args=[job.id]) not in page


def test_a_finished_job_stops_polling_and_links_its_campaign_and_lineage(staff, job, first):
    campaign2 = campaign_with_items("Demo — round 2", ["p-1:ta:g1"], responses=[[XSS, "Jibu"]])
    campaign2.items.first().responses.update(metadata={"job": job.id})
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, campaign=campaign2)
    url = reverse("generation:job_status", args=[job.id])
    ended = staff.get(url + "?polling=1", headers={"HX-Request": "true"})
    assert ended.headers["HX-Refresh"] == "true", "the poll that sees the end reloads the page"
    partial = staff.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in partial and "<html" not in partial
    assert reverse("generation:lineage", args=[campaign2.id]) in partial
    assert reverse("admin:annotation_campaign_change", args=[campaign2.id]) in partial
    page = staff.get(reverse("generation:job", args=[job.id])).content.decode()
    assert 'id="examples"' in page, "a finished job shows some of its candidates"
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;" in page


def test_cancel_and_retry_from_the_page(staff, job):
    response = staff.post(reverse("generation:job_cancel", args=[job.id]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Cancel requested" in response.content.decode()
    job.refresh_from_db()
    assert job.cancel_requested and job.status == JobStatus.RUNNING
    conflict = staff.post(reverse("generation:job_retry", args=[job.id]))
    assert conflict.status_code == 302 and GenerationJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="out of memory <b>x</b>")
    page = staff.get(reverse("generation:job", args=[job.id])).content.decode()
    assert reverse("generation:job_retry", args=[job.id]) in page and "out of memory &lt;b&gt;x&lt;/b&gt;" in page
    retried = staff.post(reverse("generation:job_retry", args=[job.id]))
    assert retried.status_code == 302 and retried["Location"] == reverse("generation:job", args=[job.id])
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.error == "" and not job.cancel_requested


def test_posts_without_the_csrf_token_are_refused(admin_user, job, first):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("generation:job_cancel", args=[job.id])).status_code == 403
    form = {"samples_per_generator": "1", "off_target": "keep"}
    assert client.post(reverse("generation:next_round", args=[first[1].id]), form).status_code == 403
    job.refresh_from_db()
    assert not job.cancel_requested and GenerationJob.objects.count() == 1


def test_a_succeeded_training_run_page_offers_the_next_round(staff, first):
    _campaign, run, _version = first
    page = staff.get(reverse("training:run", args=[run.id])).content.decode()
    assert 'id="next-round-button"' in page and reverse("generation:next_round", args=[run.id]) in page
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    assert 'id="next-round-button"' not in staff.get(reverse("training:run", args=[run.id])).content.decode()


def test_next_round_from_the_run_page_queues_the_job_and_opens_it(staff, first):
    campaign, run, version = first
    response = staff.post(reverse("generation:next_round", args=[run.id]), {
        "samples_per_generator": "1", "off_target": "keep", "against_parent": "on", "languages_per_prompt": "2"})
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("generation:job", args=[job.id])
    assert job.training_run == run and job.campaign_name == "Demo — round 2" and len(job.generators) == 2
    assert job.languages_per_prompt == 2 and job.source_campaign == campaign


def test_next_round_of_a_failed_run_is_refused_on_its_page(staff, first):
    _campaign, run, _version = first
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    response = staff.post(reverse("generation:next_round", args=[run.id]),
                          {"samples_per_generator": "1", "off_target": "keep"})
    assert response.status_code == 400 and "succeeded" in response.content.decode()
    assert GenerationJob.objects.count() == 0


def test_the_next_round_page_offers_every_option_with_the_default_name(staff, first):
    _campaign, run, _version = first
    page = staff.get(reverse("generation:next_round", args=[run.id])).content.decode()
    assert "Default name: Demo — round 2" in page and 'name="prompt_campaign"' in page and 'name="seed"' in page


def test_the_admin_action_next_round_queues_the_job_and_opens_it(staff, first):
    _campaign, run, _version = first
    response = staff.post(reverse("admin:training_trainingrun_changelist"),
                          {"action": "next_round", "_selected_action": [run.id]})
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("generation:job", args=[job.id])
    assert job.training_run == run and job.created_by is not None


def test_the_lineage_page_shows_both_rounds_with_deltas_and_rates(staff, first, make_annotator):
    campaign, run, version = first
    judge_all(campaign, [make_annotator(f"ta{n}", ["ta"], ["sw"]) for n in range(2)], wrong_language={"p-1": [0]})
    evaluation(base=run.base_model, version=None, scores={"sw": 50.0, "ta": 75.0})
    evaluation(base=run.base_model, version=version, run=run, scores={"sw": 75.0, "ta": 50.0})
    second = campaign_with_items(f"Demo — round 2 {XSS}", ["p-1:ta:g1"])
    next_round_job(run=run, campaign=second)
    response = staff.get(reverse("generation:lineage", args=[second.id]))
    page = response.content.decode()
    assert response.status_code == 200 and len(response.context["rounds"]) == 2
    assert 'id="round-1"' in page and 'id="round-2"' in page and 'class="table-scroll"' in page
    assert '<span class="delta better" title="better">+25.0 ▲' in page
    assert '<span class="delta worse" title="worse">\u221225.0 ▼' in page
    assert "25.0% <span class=\"small muted\">2 of 8</span>" in page, "flagged wrong language, round 1"
    assert "<script>window.__xss" not in page and "Demo — round 2 &lt;script&gt;" in page
    assert Campaign.objects.count() == 2
