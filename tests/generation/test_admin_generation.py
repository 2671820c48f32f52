"""Generation in the admin: an endpoint's host is checked against the allowlist on save; jobs are read-only, with
their progress and counts, and are cancelled or retried by actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import JobStatus
from generation.models import Endpoint, GenerationJob
from generation.services.jobs import generation_job_create

pytestmark = pytest.mark.usefixtures("job_dirs")


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


def endpoint_form(**changes) -> dict:
    return {"name": "local", "base_url": "http://127.0.0.1:8001/v1", "model": "qwen", "api_key_env": "",
            "timeout_seconds": "60", "max_retries": "2", "concurrency": "4", "notes": "", **changes}


def test_an_endpoint_on_a_host_that_is_not_allowed_is_refused_with_the_reason(admin_client_, settings):
    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = ["127.0.0.1:8001"]
    url = reverse("admin:generation_endpoint_add")
    refused = admin_client_.post(url, endpoint_form(base_url="http://10.0.0.5/v1"))
    assert refused.status_code == 200 and not Endpoint.objects.exists()
    assert "is not among the hosts generation may call" in refused.content.decode()
    assert "CROSSFEED_GENERATION_ALLOWED_HOSTS" in refused.content.decode()
    saved = admin_client_.post(url, endpoint_form())
    assert saved.status_code == 302
    assert Endpoint.objects.get().created_by.username == "boss"


def test_jobs_are_read_only_and_cancelled_or_retried_by_actions(admin_client_, tiny_base):
    job = generation_job_create(generators=[{"base_model": tiny_base.id}],
                                prompts={"items": [{"external_id": "a", "text": "Habari?", "language": "sw"}]},
                                response_languages=["ta"], campaign={"name": "From the admin"}, enqueue=False)
    changelist = reverse("admin:generation_generationjob_changelist")
    page = admin_client_.get(changelist).content.decode()
    assert "From the admin" in page and "0 / 1" in page
    assert admin_client_.get(reverse("admin:generation_generationjob_add")).status_code == 403
    admin_client_.post(changelist, {"action": "cancel_jobs", "_selected_action": [job.id]})
    assert GenerationJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    admin_client_.post(changelist, {"action": "retry_jobs", "_selected_action": [job.id]})
    assert GenerationJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    detail = admin_client_.get(reverse("admin:generation_generationjob_change", args=[job.id]))
    assert detail.status_code == 200 and 'name="status"' not in detail.content.decode()  # nothing to edit
