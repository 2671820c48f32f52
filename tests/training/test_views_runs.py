"""The live run pages: list, page, the polled status partial, Cancel and Retry; staff only."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import JobStatus
from tests.training.conftest import record_progress
from training.models import TrainingRun
from training.services.runs import training_run_create

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture
def staff(client, admin_user) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def run(base, preference_export, sft_export) -> TrainingRun:
    return training_run_create(kind="sft_dpo", base_model=base, export=preference_export, sft_export=sft_export,
                               enqueue=False)


def chart_data(html: str) -> dict:
    match = re.search(r'<script id="run-chart-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no chart data in the page"
    return json.loads(match.group(1))


def test_it_lists_runs_for_staff(staff, run):
    response = staff.get(reverse("training:runs"))
    assert response.status_code == 200
    assert reverse("training:run", args=[run.id]) in response.content.decode()


def test_it_shows_a_running_run_with_progress_eta_log_and_chart_data(staff, run):
    record_progress(run, status="running", step=2, total=4)
    response = staff.get(reverse("training:run", args=[run.id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="50.0"' in html and "step 2 of 4 (50.0%)" in html and "about 0:30 left" in html
    assert "step 2 &lt;b&gt;not markup&lt;/b&gt;" in html  # the log is escaped
    assert 'id="chart-loss"' in html and 'id="chart-dpo"' in html and "chart.umd.min.js" in html
    chart = chart_data(html)
    assert [point["x"] for point in chart["loss"]["sft"]] == [1, 2]
    assert chart["loss"]["dpo"] == [{"x": 1, "y": 1.9}, {"x": 2, "y": 1.8}]
    assert chart["dpo"]["rewards/accuracies"] == [{"x": 1, "y": 0.5}, {"x": 2, "y": 1.0}]
    assert chart["dpo"]["rewards/margins"] == [{"x": 1, "y": 0.1}, {"x": 2, "y": 0.2}]


def test_the_partial_polls_while_the_run_is_live_and_stops_when_it_ends(staff, run):
    url = reverse("training:run_status", args=[run.id])
    queued = staff.get(url, headers={"HX-Request": "true"}).content.decode()
    assert f'hx-get="{url}"' in queued and 'hx-trigger="every 2s"' in queued
    assert "<html" not in queued  # a fragment, not a page
    record_progress(run, status="running")
    assert 'hx-trigger="every 2s"' in staff.get(url).content.decode()
    record_progress(run, status="succeeded", step=4, total=4, versions=["sft", "dpo"])
    finished = staff.get(url).content.decode()
    assert "hx-trigger" not in finished and "hx-get" not in finished
    assert "tiny-dpo-run" in finished and "dpo/adapter" in finished and "train loss" in finished
    assert len(chart_data(finished)["loss"]["dpo"]) == 4


def test_a_failed_run_shows_its_error_and_retry_but_no_cancel(staff, run):
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, error="the dpo script exited with code 1")
    html = staff.get(reverse("training:run", args=[run.id])).content.decode()
    assert "exited with code 1" in html and 'role="alert"' in html
    assert reverse("training:run_retry", args=[run.id]) in html
    assert reverse("training:run_cancel", args=[run.id]) not in html


def test_cancel_by_htmx_answers_with_the_partial(staff, run):
    response = staff.post(reverse("training:run_cancel", args=[run.id]), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and 'id="run-status"' in html and "Cancel requested" in html
    assert "hx-trigger" not in html  # cancelled before it started: finished
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.CANCELLED


def test_retry_by_a_plain_form_redirects_to_the_page(staff, run, django_capture_on_commit_callbacks):
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.CANCELLED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff.post(reverse("training:run_retry", args=[run.id]))
    assert response.status_code == 302 and response["Location"] == reverse("training:run", args=[run.id])
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.QUEUED and len(callbacks) == 1


def test_a_conflict_is_shown_not_raised(staff, run):
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED)
    response = staff.post(reverse("training:run_cancel", args=[run.id]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and "nothing to cancel" in response.content.decode()
    followed = staff.post(reverse("training:run_retry", args=[run.id]), follow=True)
    assert "only failed or cancelled runs can be retried" in followed.content.decode()


def test_state_changes_need_post_and_csrf(admin_user, run):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    cancel = reverse("training:run_cancel", args=[run.id])
    assert client.get(cancel).status_code == 405
    assert client.post(cancel).status_code == 403
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.QUEUED
    page = client.get(reverse("training:run", args=[run.id]))
    token = page.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert client.post(cancel, {"csrfmiddlewaretoken": token}).status_code == 302
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.CANCELLED


@pytest.mark.parametrize("name, method", [("training:runs", "get"), ("training:run", "get"),
                                          ("training:run_status", "get"), ("training:run_cancel", "post"),
                                          ("training:run_retry", "post")])
def test_annotators_are_refused_and_strangers_sent_to_log_in(client, annotator, run, name, method):
    url = reverse(name) if name == "training:runs" else reverse(name, args=[run.id])
    response = getattr(client, method)(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(annotator)
    assert getattr(client, method)(url).status_code == 403
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.QUEUED


def test_an_unknown_run_is_404(staff, db):
    assert staff.get(reverse("training:run", args=[999])).status_code == 404
