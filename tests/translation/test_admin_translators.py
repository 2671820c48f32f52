"""Translators in the admin: added through the translators service's checks (an llm on a local model with the default
prompt, an endpoint on an allowed host, a seq2seq model whose tokenizer's languages are recorded), a bad one refused
with the service's message on its field and nothing stored, read-only once added but for the notes; translation
jobs read-only, cancelled or retried by actions."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation.models import JobStatus
from generation.models import Endpoint
from training.models import BaseModel
from translation.models import TranslationJob, Translator
from translation.services.jobs import translation_job_create
from translation.services.translators import PROMPT_TEMPLATE

ADD = "admin:translation_translator_add"


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def local_model(db, tmp_path) -> BaseModel:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return BaseModel.objects.create(name="local", path=str(folder))


def translator_form(**changes) -> dict:
    return {"name": "mt", "kind": "llm", "base_model": "", "model_version": "", "endpoint": "", "path": "",
            "prompt_template": "", "max_new_tokens": "256", "notes": "", **changes}


def errors(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", found) for found in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page)]


def test_an_llm_translator_is_added_with_the_default_prompt(admin_client_, admin_user, local_model):
    response = admin_client_.post(reverse(ADD), translator_form(name="  Local llm ", base_model=local_model.id))
    assert response.status_code == 302, errors(response.content.decode())
    translator = Translator.objects.get()
    assert (translator.name, translator.kind, translator.base_model, translator.max_new_tokens) == (
        "Local llm", "llm", local_model, 256)
    assert translator.prompt_template == PROMPT_TEMPLATE and translator.created_by == admin_user


def test_an_endpoint_translator_is_added_on_an_allowed_host(admin_client_, settings, db):
    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = ["127.0.0.1:8001"]
    endpoint = Endpoint.objects.create(name="local", base_url="http://127.0.0.1:8001/v1", model="qwen")
    template = "From {source} into {target}, please:\n\n{text}"
    response = admin_client_.post(reverse(ADD), translator_form(name="qwen-mt", kind="endpoint",
                                                                endpoint=endpoint.id, prompt_template=template))
    assert response.status_code == 302, errors(response.content.decode())
    translator = Translator.objects.get()
    assert (translator.kind, translator.endpoint, translator.prompt_template) == ("endpoint", endpoint, template)


def test_a_seq2seq_translator_records_its_tokenizers_languages(admin_client_, tiny_seq2seq_dir):
    response = admin_client_.post(reverse(ADD), translator_form(name="tiny-mt", kind="seq2seq",
                                                                path=str(tiny_seq2seq_dir)))
    assert response.status_code == 302, errors(response.content.decode())
    translator = Translator.objects.get()
    assert "eng_Latn" in translator.languages and "arb_Arab" in translator.languages
    page = admin_client_.get(reverse("admin:translation_translator_changelist")).content.decode()
    assert f">{len(translator.languages)}<" in page, "the list shows how many languages it knows"


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"base_model": "MODEL", "path": "/somewhere"}, "base_model",
     "an llm translator takes one of base_model or model_version, nothing else"),
    ({"kind": "endpoint", "endpoint": "ENDPOINT"}, "endpoint", "is not allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS"),
    ({"base_model": "MODEL", "prompt_template": "Translate {text}"}, "prompt_template",
     "the template must contain {source}, {target}, {text}; {source}, {target} is missing"),
    ({"kind": "seq2seq", "path": "/nowhere/at/all"}, "path", "no tokenizer could be loaded from '/nowhere/at/all'"),
    ({"name": "Existing", "base_model": "MODEL"}, "name", "a translator named 'Existing' already exists"),
])
def test_a_bad_translator_is_refused_with_the_services_message(admin_client_, settings, local_model, changes, field,
                                                               message):
    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = []
    endpoint = Endpoint.objects.create(name="far", base_url="http://10.0.0.5/v1", model="qwen")
    Translator.objects.create(name="existing", kind="llm", base_model=local_model)
    ids = {"MODEL": local_model.id, "ENDPOINT": endpoint.id}
    data = translator_form(**{key: ids.get(value, value) for key, value in changes.items()})
    response = admin_client_.post(reverse(ADD), data)
    page = response.content.decode()
    assert response.status_code == 200 and Translator.objects.count() == 1
    row = re.search(rf'<div class="form-row[^"]*field-{field}[^"]*">(.*?)</div>\s*</div>', page, re.DOTALL)
    assert row and message in re.sub(r"&#x27;", "'", row.group(1)), errors(page)


def test_an_added_translator_is_read_only_but_for_its_notes(admin_client_, local_model):
    translator = Translator.objects.create(name="fixed", kind="llm", base_model=local_model, max_new_tokens=64)
    url = reverse("admin:translation_translator_change", args=[translator.id])
    page = admin_client_.get(url).content.decode()
    assert 'name="notes"' in page and 'name="max_new_tokens"' not in page and 'name="base_model"' not in page
    response = admin_client_.post(url, {"notes": "for Swahili", "max_new_tokens": "4000"})
    assert response.status_code == 302
    translator.refresh_from_db()
    assert (translator.notes, translator.max_new_tokens) == ("for Swahili", 64)


def test_jobs_are_read_only_and_cancelled_or_retried_by_actions(admin_client_, instruction_set, endpoint_translator):
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    changelist = reverse("admin:translation_translationjob_changelist")
    page = admin_client_.get(changelist).content.decode()
    assert reverse("translation:job", args=[job.id]) in page and "fake-mt" in page
    assert admin_client_.get(reverse("admin:translation_translationjob_change", args=[job.id])).status_code == 200
    assert admin_client_.get("/admin/translation/translationjob/add/").status_code == 403

    admin_client_.post(changelist, {"action": "cancel_jobs", "_selected_action": [job.id]})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    admin_client_.post(changelist, {"action": "retry_jobs", "_selected_action": [job.id]})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    response = admin_client_.post(changelist, {"action": "retry_jobs", "_selected_action": [job.id]}, follow=True)
    assert "only failed or cancelled jobs can be retried" in response.content.decode()
    assert TranslationJob.objects.count() == 1
