"""The translation pages (Django test client): who may see them, the list (jobs, translators, instruction sets), the
new-job form (languages chosen and typed, translators in the order sent, the services' errors on their fields with
nothing stored), the job page of a finished job (the share chosen from each translator, the histogram, how many fall
below the threshold, throughput, failures, escaped), progress polling, Cancel and Retry."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from annotation.models import JobStatus
from generation.models import Endpoint
from tests.conftest import PASSWORD
from tests.translation.fake_translator import ROWS, FakeTranslator
from translation.models import TranslationJob
from translation.services.execution import translation_job_execute
from translation.services.jobs import translation_job_create
from translation.services.translators import translator_create

LANGUAGES = ["sw", "ar", "zh-Hans"]
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def staff(client, admin_user) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def two_servers(settings):
    """Two translators on two fake servers, each copying one row's instruction untranslated (a hard failure): the
    first wins the "add" row, the second the "sky" row, so each is chosen for half of the rows."""
    with FakeTranslator() as first, FakeTranslator() as second:
        first.wrong.add(ROWS[0]["instruction"])
        second.wrong.add(ROWS[1]["instruction"])
        settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [first.host, second.host]
        translators = []
        for name, server in (("mt-one", first), ("mt-two", second)):
            endpoint = Endpoint.objects.create(name=name, base_url=server.base_url, model="fake-model",
                                               timeout_seconds=1.0, max_retries=0, concurrency=1)
            translators.append(translator_create(name=name, kind="endpoint", endpoint=endpoint.id))
        yield translators


@pytest.fixture
def finished(instruction_set, two_servers) -> TranslationJob:
    job = translation_job_create(instruction_set=instruction_set, languages=LANGUAGES,
                                 translators=[translator.id for translator in two_servers], quality_threshold=0.97,
                                 enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


@pytest.fixture
def queued(instruction_set, endpoint_translator) -> TranslationJob:
    return translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                  translators=[endpoint_translator.id], enqueue=False)


def test_it_sends_anonymous_people_to_the_login_page(client, db):
    for url in (reverse("translation:jobs"), reverse("translation:job_new"), reverse("translation:job", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_annotators_and_staff_without_permissions_get_403_and_change_nothing(client, annotator, queued):
    bare_staff = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True)
    for user in (annotator, bare_staff):
        client.force_login(user)
        for url in (reverse("translation:jobs"), reverse("translation:job_new"),
                    reverse("translation:job", args=[queued.id]), reverse("translation:job_status", args=[queued.id]),
                    reverse("translation:job_exports", args=[queued.id])):
            assert client.get(url).status_code == 403, (user, url)
        for url in (reverse("translation:job_new"), reverse("translation:job_cancel", args=[queued.id]),
                    reverse("translation:job_retry", args=[queued.id]),
                    reverse("translation:job_post_edit", args=[queued.id]),
                    reverse("translation:job_export", args=[queued.id])):
            assert client.post(url, {"languages": ["ar"]}).status_code == 403, (user, url)
    queued.refresh_from_db()
    assert queued.status == JobStatus.QUEUED and not queued.cancel_requested
    assert TranslationJob.objects.count() == 1


def test_the_list_shows_jobs_translators_sets_and_the_navigation_link(staff, queued, endpoint_translator,
                                                                      instruction_set):
    page = staff.get(reverse("translation:jobs")).content.decode()
    assert reverse("translation:job", args=[queued.id]) in page and "tiny alpaca" in page
    assert f'href="{reverse("translation:jobs")}"' in page, "the staff navigation links to the translation pages"
    assert reverse("translation:job_new") in page
    assert 'id="translators"' in page and "fake-mt" in page and "OpenAI-compatible endpoint" in page
    assert reverse("admin:translation_translator_add") in page
    assert 'id="instruction-sets"' in page and reverse("admin:instructions_instructionset_add") in page


def test_annotators_see_no_translation_link(client, annotator):
    client.force_login(annotator)
    assert reverse("translation:jobs") not in client.get(reverse("home")).content.decode()


def test_the_form_offers_the_ready_sets_every_language_and_the_translators(staff, instruction_set, endpoint_translator,
                                                                           llm_translator):
    response = staff.get(reverse("translation:job_new"))
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields["instruction_set"].queryset) == [instruction_set]
    assert len(list(form.fields["languages"].choices)) >= 100
    page = response.content.decode()
    assert 'value="zh-Hans"' in page and "fake-mt" in page and "tiny-llm" in page
    assert 'name="post_edit_campaign"' in page and 'name="quality_threshold"' in page


def test_the_form_creates_a_job_with_the_languages_and_translators_in_order(staff, admin_user, instruction_set,
                                                                            endpoint_translator, llm_translator):
    response = staff.post(reverse("translation:job_new"), {
        "instruction_set": instruction_set.id, "languages": ["ar", "zh-Hans"], "language_codes": "swh_Latn, ar",
        "translators": [endpoint_translator.id, llm_translator.id], "quality_threshold": "0.7"})
    job = TranslationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("translation:job", args=[job.id])
    assert job.languages == ["ar", "zh-Hans", "sw"], "chosen first, then typed; an alias resolved; each once"
    assert [entry["label"] for entry in job.translators] == ["fake-mt", "tiny-llm"]
    assert job.quality_threshold == 0.7 and job.created_by == admin_user and job.status == JobStatus.QUEUED

    staff.post(reverse("translation:job_new"), {
        "instruction_set": instruction_set.id, "languages": ["sw"],
        "translators": [llm_translator.id, endpoint_translator.id], "quality_threshold": "0.5"})
    newest = TranslationJob.objects.order_by("-id").first()
    assert [entry["label"] for entry in newest.translators] == ["tiny-llm", "fake-mt"], "the order sent is kept"


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"language_codes": "sw, klingon"}, "language_codes", "unknown language &#x27;klingon&#x27;"),
    ({"languages": ["en"]}, "languages", "is the set&#x27;s own language"),
    ({"languages": []}, "languages", "Choose at least one target language"),
    ({"translators": []}, "translators", "Choose at least one translator."),
    ({"quality_threshold": "1.5"}, "quality_threshold", "less than or equal to 1"),
    ({"post_edit": "on", "post_edit_campaign": ""}, "post_edit_campaign", "Name the post-editing campaign."),
])
def test_the_form_shows_errors_under_their_field_and_stores_nothing(staff, instruction_set, endpoint_translator,
                                                                    fields, field, message):
    data = {"instruction_set": instruction_set.id, "languages": ["sw"], "translators": [endpoint_translator.id],
            "quality_threshold": "0.5", **fields}
    response = staff.post(reverse("translation:job_new"), data)
    assert response.status_code == 400 and not TranslationJob.objects.exists()
    match = re.search(rf'<p class="field-error" id="error-{field}" role="alert">(.*?)</p>', response.content.decode())
    assert match and message in match.group(1), response.content.decode()[-3000:]


def test_a_seq2seq_translator_without_the_language_is_refused_under_translators(staff, instruction_set,
                                                                                tiny_seq2seq_dir):
    translator = translator_create(name="tiny-mt", kind="seq2seq", path=str(tiny_seq2seq_dir))
    missing = next(code for code in ("yo", "qu", "am", "ta") if code not in _codes(translator))
    response = staff.post(reverse("translation:job_new"), {
        "instruction_set": instruction_set.id, "languages": [missing], "translators": [translator.id],
        "quality_threshold": "0.5"})
    assert response.status_code == 400 and not TranslationJob.objects.exists()
    error = re.search(r'id="error-translators" role="alert">(.*?)</p>', response.content.decode()).group(1)
    assert "does not know" in error and "tiny-mt" in html.unescape(error)


def _codes(translator) -> set[str]:
    from annotation.models import Language

    return set(Language.objects.filter(flores_code__in=translator.languages).values_list("code", flat=True))


def test_the_job_page_shows_the_report_per_language(staff, finished):
    response = staff.get(reverse("translation:job", args=[finished.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="per-language"' in page and 'hx-get' not in page.split('id="job-status"')[1].split(">")[0]
    for code in LANGUAGES:
        report = finished.per_language[code]
        assert report["chosen_by"] == {"mt-one": 1, "mt-two": 1}, report
        row = re.search(rf'<tr id="language-{code}" data-language="{code}">(.*?)</tr>', page, re.DOTALL).group(1)
        assert re.search(r'data-translator="mt-one">mt-one: <strong>50.0%</strong>', row)
        assert re.search(r'data-translator="mt-two">mt-two: <strong>50.0%</strong>', row)
        counts = [int(count) for count in re.findall(r'data-count="(\d+)"', row)]
        assert counts == report["histogram"] and sum(counts) == 2
        below = re.search(r'<td class="num below-threshold">(\d+)', row).group(1)
        assert int(below) == report["below_threshold"]
        assert re.search(r'<td class="num not-acceptable">0</td>', row)
        assert f"{report['mean_quality']:.3f}" in row
        assert f'<div class="small muted scorer">{report["scorer"]}</div>' in row  # "fallback": no COMET here
    assert 'lang="ar" dir="rtl"' in page and 'lang="zh-Hans" dir="ltr"' in page
    assert 'id="job-throughput"' in page and "mt-one" in page and "all translators" in page


def test_a_running_job_polls_and_its_end_reloads_the_page(staff, queued):
    page = staff.get(reverse("translation:job", args=[queued.id])).content.decode()
    assert f'hx-get="{reverse("translation:job_status", args=[queued.id])}?polling=1"' in page
    assert 'id="per-language"' not in page and 'id="cancel-job"' in page
    TranslationJob.objects.filter(pk=queued.pk).update(status=JobStatus.SUCCEEDED)
    refresh = staff.get(reverse("translation:job_status", args=[queued.id]) + "?polling=1", HTTP_HX_REQUEST="true")
    assert refresh.status_code == 200 and refresh["HX-Refresh"] == "true"


def test_failures_and_errors_are_escaped(staff, queued):
    TranslationJob.objects.filter(pk=queued.pk).update(
        status=JobStatus.FAILED, error=f"boom {XSS}", failure_count=1,
        failures=[{"external_id": "sky", "language": "sw", "field": "output", "translator": "fake-mt",
                   "message": f"garbage: {XSS}"}])
    page = staff.get(reverse("translation:job", args=[queued.id])).content.decode()
    assert XSS not in page and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert 'id="job-failures"' in page and 'id="retry-job"' in page


def test_cancel_and_retry_from_the_page(staff, queued):
    cancelled = staff.post(reverse("translation:job_cancel", args=[queued.id]), HTTP_HX_REQUEST="true")
    assert cancelled.status_code == 200 and "Cancel requested" in cancelled.content.decode()
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    again = staff.post(reverse("translation:job_cancel", args=[queued.id]), HTTP_HX_REQUEST="true")
    assert 'class="error"' in again.content.decode(), "a second cancel is refused with the service's message"
    retried = staff.post(reverse("translation:job_retry", args=[queued.id]))
    assert retried.status_code == 302 and retried["Location"] == reverse("translation:job", args=[queued.id])
    queued.refresh_from_db()
    assert queued.status == JobStatus.QUEUED


def test_an_unknown_job_is_404(staff):
    assert staff.get(reverse("translation:job", args=[999999])).status_code == 404

