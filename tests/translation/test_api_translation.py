"""REST API v1, instruction translation (docs/api.md, "Instruction translation"): translators registered and
listed; a job created (201, queued on "translation"), run, and read back with its report per language; cancel and
retry; bad input refused with its field and nothing stored."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotation.models import JobStatus
from translation.models import TranslationJob, Translator
from translation.services.execution import translation_job_execute


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


def start(admin_api, instruction_set, **body):
    return admin_api.post(reverse("api-set-translations", args=[instruction_set.id]), body, format="json")


def test_register_an_endpoint_translator_then_translate_and_read_the_report(admin_api, instruction_set, fake_server,
                                                                            settings,
                                                                            django_capture_on_commit_callbacks):
    from generation.models import Endpoint

    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [fake_server.host]
    endpoint = Endpoint.objects.create(name="fake", base_url=fake_server.base_url, model="m", timeout_seconds=5,
                                       max_retries=0, concurrency=2)
    response = admin_api.post(reverse("api-translators"), {"name": "fake-mt", "kind": "endpoint",
                                                          "endpoint": endpoint.id}, format="json")
    assert response.status_code == 201, response.json()
    translator = response.json()
    assert translator["kind"] == "endpoint" and "{text}" in translator["prompt_template"]
    assert [t["name"] for t in admin_api.get(reverse("api-translators")).json()] == ["fake-mt"]

    with django_capture_on_commit_callbacks(execute=True):
        response = start(admin_api, instruction_set, languages=["sw", "ar", "zh-Hans"],
                         translators=[translator["id"]], quality_threshold=0.95)
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    assert response.json()["status"] == JobStatus.QUEUED
    assert DBTaskResult.objects.filter(queue_name="translation").count() == 1

    translation_job_execute(job_id=job_id)
    body = admin_api.get(reverse("api-translation-job", args=[job_id])).json()
    assert body["status"] == JobStatus.SUCCEEDED and body["progress"]["percent"] == 100.0
    assert set(body["per_language"]) == {"sw", "ar", "zh-Hans"}
    for report in body["per_language"].values():
        assert report["rows"] == 2 and report["chosen_by"] == {"fake-mt": 2} and report["post_edited"] == 0
        assert report["mean_quality"] > 0.8 and len(report["histogram"]) == 10
        assert 0 <= report["below_threshold"] <= 2
    assert body["throughput"]["per_generator"]["fake-mt"]["prompts"] == 24
    assert admin_api.get(reverse("api-translation-jobs")).json()[0]["id"] == job_id


def test_cancel_and_retry(admin_api, instruction_set, endpoint_translator):
    job_id = start(admin_api, instruction_set, languages=["sw"], translators=[endpoint_translator.id]).json()["id"]
    response = admin_api.post(reverse("api-translation-job-cancel", args=[job_id]))
    assert response.status_code == 202 and response.json()["status"] == JobStatus.CANCELLED
    assert admin_api.post(reverse("api-translation-job-cancel", args=[job_id])).status_code == 409
    response = admin_api.post(reverse("api-translation-job-retry", args=[job_id]))
    assert response.status_code == 202 and response.json()["status"] == JobStatus.QUEUED
    assert admin_api.post(reverse("api-translation-job-retry", args=[job_id])).status_code == 409


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"languages": ["sw", "klingon"]}, "languages", "unknown language"),
    ({"translators": [12345]}, "translators", "no translator"),
    ({"quality_threshold": 2}, "quality_threshold", ""),
    ({"post_edit": {"campaign_name": "Post-edit sw", "overlap": 0}}, "post_edit.overlap", "whole number"),
    ({"pivot": "en"}, "pivot", "unknown field"),
])
def test_bad_input_is_refused_with_its_field_and_nothing_stored(admin_api, instruction_set, endpoint_translator,
                                                                body, field, words):
    response = start(admin_api, instruction_set, **{"languages": ["sw"], "translators": [endpoint_translator.id],
                                                    **body})
    assert response.status_code == 400 and words in response.json()[field][0]
    assert not TranslationJob.objects.exists() and not DBTaskResult.objects.exists()


def test_a_translator_with_bad_input_is_refused(admin_api, endpoint_translator):
    cases = [({"name": "x", "kind": "rbmt"}, "kind"),
             ({"name": "fake-mt", "kind": "endpoint", "endpoint": endpoint_translator.endpoint_id}, "name"),
             ({"name": "y", "kind": "llm", "base_model": 424242}, "base_model"),
             ({"name": "z", "kind": "endpoint", "endpoint": endpoint_translator.endpoint_id,
               "prompt_template": "Translate {text}"}, "prompt_template"),
             ({"name": "w", "kind": "seq2seq", "path": "/nowhere/at/all"}, "path")]
    for body, field in cases:
        response = admin_api.post(reverse("api-translators"), body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.json())
    assert Translator.objects.count() == 1


def test_an_unknown_set_is_not_found(admin_api, endpoint_translator):
    response = admin_api.post(reverse("api-set-translations", args=[999]), {"languages": ["sw"],
                              "translators": [endpoint_translator.id]}, format="json")
    assert response.status_code == 404
