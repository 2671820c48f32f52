"""The evaluation pages (Django test client): numbers on the results page, progress polling, CSV, example outputs
with off-target marks and escaping, the comparison with signed and coloured deltas, filters."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from annotation.models import JobStatus
from evaluation.models import EvaluationRun
from tests.evaluation.conftest import output_record
from training.models import ModelVersion

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def client_as(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def results_run(finished_run):
    return finished_run(
        results=[("flores-en-xx", "sw", "bleu", 12.345, 5), ("flores-en-xx", "sw", "chrf++", 40.0, 5),
                 ("flores-en-xx", "sw", "off_target_rate", 20.0, 5), ("flores-en-xx", "ar", "bleu", 7.5, 5),
                 ("flores-en-xx", "ar", "chrf++", 30.0, 5), ("flores-en-xx", "ar", "off_target_rate", None, 0)],
        skipped=[("flores-en-xx", "qu", "flores-en-xx has no qu data")],
        records=[output_record("flores-en-xx", "sw", "1", XSS, off_target=True, input_text="The market opens."),
                 output_record("flores-en-xx", "sw", "2", "Soko la kijiji", off_target=False),
                 output_record("flores-en-xx", "ar", "1", "يفتح سوق القرية", off_target=None)],
    )


def test_the_results_page_shows_the_numbers_per_language(client_as, annotator, results_run):
    response = client_as(annotator).get(reverse("evaluation:run", args=[results_run.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "12.3" in page and "40.0" in page and "7.5" in page and "n=5" in page
    assert "Swahili" in page and "Arabic" in page
    # bleu mean (12.345 + 7.5) / 2 = 9.9; parity 9.9225 / 12.345 × 100 = 80.4
    assert "mean 9.9 over 2 languages · parity 80.4 (best: sw)" in page
    assert "Skipped (not run, not zero)" in page and "flores-en-xx has no qu data" in page
    assert 'id="chart-flores-en-xx" type="application/json"' in page
    chart = response.context["tables"][0]["chart"]
    assert chart["labels"] == ["ar", "sw"] and chart["datasets"][0] == {"label": "bleu", "data": [7.5, 12.35]}
    assert "vendor/chartjs-4.5.1/chart.umd.min.js" in page and "js/evaluation.js" in page
    assert reverse("evaluation:retry", args=[results_run.id]) not in page, "annotators read only"


def test_staff_see_the_actions_of_a_failed_run(client_as, admin_user, finished_run):
    run = finished_run(status=JobStatus.FAILED)
    EvaluationRun.objects.filter(pk=run.pk).update(error="RuntimeError: <b>boom</b>. The outputs so far are kept")
    page = client_as(admin_user).get(reverse("evaluation:run", args=[run.id])).content.decode()
    assert reverse("evaluation:retry", args=[run.id]) in page
    assert "RuntimeError: &lt;b&gt;boom&lt;/b&gt;" in page


def test_the_status_partial_polls_until_the_run_ends_then_reloads(client_as, admin_user, finished_run):
    run = finished_run(status=JobStatus.RUNNING)
    client = client_as(admin_user)
    url = reverse("evaluation:run_status", args=[run.id])
    page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in page
    EvaluationRun.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED)
    response = client.get(url + "?polling=1", HTTP_HX_REQUEST="true")
    assert response.headers["HX-Refresh"] == "true"
    assert 'hx-trigger="every 2s"' not in client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_results_download_as_csv(client_as, annotator, results_run):
    response = client_as(annotator).get(reverse("evaluation:results_csv", args=[results_run.id]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {"benchmark": "flores-en-xx", "language": "sw", "metric": "bleu", "value": "12.3450", "n": "5"}.items() <= \
        next(r for r in rows if r["language"] == "sw" and r["metric"] == "bleu").items()
    assert next(r for r in rows if r["language"] == "qu")["skipped"] == "yes"


def test_example_outputs_mark_off_target_and_escape_model_text(client_as, admin_user, results_run):
    # The outputs page is for admins (every prompt and answer verbatim, as the API's outputs download).
    url = reverse("evaluation:outputs", args=[results_run.id])
    response = client_as(admin_user).get(url, {"benchmark": "flores-en-xx", "language": "sw"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert page.count('class="off-target-badge"') == 1 and "The market opens." in page
    only = client_as(admin_user).get(url, {"benchmark": "flores-en-xx", "language": "sw", "off_target": "on"},
                                    HTTP_HX_REQUEST="true")
    assert only.content.decode().count("<tr class=") == 1, "the htmx fragment: the table only, one row"
    assert "<html" not in only.content.decode()
    arabic = client_as(admin_user).get(url, {"benchmark": "flores-en-xx", "language": "ar"}).content.decode()
    assert 'dir="rtl" lang="ar"' in arabic and "language not measurable" in arabic


def test_example_outputs_refuse_an_invalid_query(client_as, admin_user, results_run):
    url = reverse("evaluation:outputs", args=[results_run.id])
    assert client_as(admin_user).get(url, {"benchmark": "mmlu", "language": "sw"}).status_code == 400
    assert client_as(admin_user).get(url, {"benchmark": "flores-en-xx", "language": "??"}).status_code == 400


@pytest.fixture
def pair(finished_run):
    a = finished_run(results=[("xcopa", "sw", "accuracy", 50.0, 4), ("xcopa", "ta", "accuracy", 75.0, 4),
                              ("xcopa", "zh-Hans", "accuracy", 60.0, 4),
                              ("open-ended", "sw", "off_target_rate", 40.0, 5),
                              ("open-ended", "sw", "mean_length", 80.0, 5)])
    b = finished_run(results=[("xcopa", "sw", "accuracy", 75.0, 4), ("xcopa", "ta", "accuracy", 50.0, 4),
                              ("xcopa", "zh-Hans", "accuracy", 60.0, 4),
                              ("open-ended", "sw", "off_target_rate", 10.0, 5),
                              ("open-ended", "sw", "mean_length", 120.0, 5)])
    return a, b


def test_the_comparison_signs_and_colours_every_delta(client_as, annotator, pair):
    a, b = pair
    response = client_as(annotator).get(reverse("evaluation:compare"), {"a": a.id, "b": b.id})
    assert response.status_code == 200
    table = response.context["table"]
    assert [(c["benchmark"], c["metric"]) for c in table["columns"]] == [("open-ended", "off_target_rate"),
                                                                          ("xcopa", "accuracy")]
    page = response.content.decode()
    assert '<span class="delta better" title="better">+25.0 ▲' in page
    assert '<span class="delta worse" title="worse">\u221225.0 ▼' in page
    assert '<span class="delta same" title="no change">±0.0' in page
    # Off-target rate 40 -> 10 is a drop, and lower is better: signed −30.0, coloured as an improvement.
    assert '<span class="delta better" title="better">\u221230.0 ▲' in page
    assert table["means"][1]["a"] == pytest.approx(61.667, abs=1e-3)


def test_the_comparison_filters_by_tier_and_script(client_as, annotator, pair):
    a, b = pair
    url = reverse("evaluation:compare")
    low = client_as(annotator).get(url, {"a": a.id, "b": b.id, "tier": "low"}).context["table"]
    assert [row["language"]["code"] for row in low["rows"]] == ["sw"]
    han = client_as(annotator).get(url, {"a": a.id, "b": b.id, "script": "Hans"}).context["table"]
    assert [row["language"]["code"] for row in han["rows"]] == ["zh-Hans"]
    every = client_as(annotator).get(url, {"a": a.id, "b": b.id, "metrics": "all"}).context["table"]
    assert ("open-ended", "mean_length") in [(c["benchmark"], c["metric"]) for c in every["columns"]]
    assert client_as(annotator).get(url, {"a": a.id, "b": b.id, "tier": "huge"}).status_code == 400
    assert client_as(annotator).get(url, {"a": a.id}).status_code == 400
    fragment = client_as(annotator).get(url, {"a": a.id, "b": b.id}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="comparison-table"' in fragment and "<form" not in fragment.split("comparison-table")[0]


def test_a_version_is_compared_with_its_parent_by_default(client_as, admin_user, finished_run, plain_base):
    sft = ModelVersion.objects.create(name="sft-1", base_model=plain_base, kind="sft", adapter_path="/a")
    dpo = ModelVersion.objects.create(name="dpo-1", base_model=plain_base, kind="dpo", adapter_path="/b",
                                      parent=sft)
    older = finished_run(model_version=sft, results=[("xcopa", "sw", "accuracy", 50.0, 4)])
    newer = finished_run(model_version=dpo, results=[("xcopa", "sw", "accuracy", 75.0, 4)])
    response = client_as(admin_user).get(reverse("evaluation:compare"), {"version": dpo.id})
    assert (response.context["run_a"], response.context["run_b"]) == (older, newer)
    assert "+25.0" in response.content.decode()
    lonely = ModelVersion.objects.create(name="sft-2", base_model=plain_base, kind="sft", adapter_path="/c")
    response = client_as(admin_user).get(reverse("evaluation:compare"), {"version": lonely.id})
    assert "no finished evaluation" in response.content.decode()


def test_the_runs_list(client_as, annotator, results_run):
    page = client_as(annotator).get(reverse("evaluation:runs")).content.decode()
    assert f'href="{reverse("evaluation:run", args=[results_run.id])}"' in page and "succeeded" in page.lower()


def test_staff_start_a_run_in_the_admin_and_see_file_errors_there(client_as, admin_user, plain_base, tmp_path):
    client = client_as(admin_user)
    url = reverse("admin:evaluation_evaluationrun_add")
    assert client.get(url).status_code == 200
    response = client.post(url, {"subject": f"base:{plain_base.id}", "benchmarks": ["xcopa", "pawsx"],
                                 "languages": "sw, zh", "limit": "2", "max_new_tokens": "64", "batch_size": "4"})
    run = EvaluationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("evaluation:run", args=[run.id])
    assert (run.languages, run.limit, run.max_new_tokens, run.progress_total) == (["sw", "zh-Hans"], 2, 64, 6)
    from evaluation.services import benchmark_source_set

    (tmp_path / "oe").mkdir()
    (tmp_path / "oe" / "sw.jsonl").write_text("not json\n", encoding="utf-8")
    benchmark_source_set(name="open_ended", path=str(tmp_path / "oe"))
    response = client.post(url, {"subject": f"base:{plain_base.id}", "benchmarks": ["open-ended"],
                                 "max_new_tokens": "64", "batch_size": "4"})
    assert response.status_code == 200
    assert "sw.jsonl line 1: not valid JSON" in response.content.decode()
    assert EvaluationRun.objects.count() == 1


def test_the_chart_data_is_json_not_markup(client_as, annotator, finished_run):
    run = finished_run(results=[("xcopa", "sw", "accuracy", 50.0, 4)])
    page = client_as(annotator).get(reverse("evaluation:run", args=[run.id])).content.decode()
    start = page.index('id="chart-xcopa" type="application/json">') + len('id="chart-xcopa" type="application/json">')
    assert json.loads(page[start:page.index("</script>", start)])["labels"] == ["sw"]


@pytest.mark.parametrize("code", [code for code, _name in settings.LANGUAGES if code != "en"])
def test_the_dashboards_read_in_every_interface_language(client_as, annotator, admin_user, results_run, pair, code):
    client = client_as(annotator)
    client.post(reverse("ui_language_set"), {"language": code})
    admin = Client()  # the outputs page is for admins
    admin.force_login(admin_user)
    admin.post(reverse("ui_language_set"), {"language": code})
    a, b = pair
    pages = [(reverse("evaluation:runs"), {}, "Evaluations"),
             (reverse("evaluation:run", args=[results_run.id]), {}, "Skipped (not run, not zero):"),
             (reverse("evaluation:outputs", args=[results_run.id]), {"benchmark": "flores-en-xx", "language": "sw"},
              "off-target"),
             (reverse("evaluation:compare"), {"a": a.id, "b": b.id}, "Compare evaluations")]
    for url, query, text in pages:
        response = (admin if "/outputs/" in url else client).get(url, query)
        assert response.status_code == 200, (code, url)
        with translation.override(code):
            translated = translation.gettext(text)
        assert translated != text and translated in response.content.decode(), (code, url, text)
    assert "12.3" in client.get(reverse("evaluation:run", args=[results_run.id])).content.decode()
