"""The evaluation endpoints of the REST contract (ARCHITECTURE.md): shapes, status codes, who may call what."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annotation.models import JobStatus
from evaluation.benchmarks import get_benchmark
from evaluation.models import EvaluationRun
from evaluation.services import benchmark_source_set
from tests.evaluation.conftest import output_record


def test_benchmarks_list_name_task_languages_and_sample_data(api, annotator):
    response = api(annotator).get("/api/v1/benchmarks/")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert set(rows) >= {"flores-en-xx", "flores-xx-en", "xlsum", "pawsx", "xcopa", "belebele", "open-ended"}
    assert rows["pawsx"]["task"] == "classification"
    assert rows["pawsx"]["languages"] == ["en", "fr", "ja", "zh-Hans"]
    assert rows["xlsum"]["has_sample_data"] is True and rows["xlsum"]["uses_sample_data"] is True
    assert set(rows["xlsum"]) >= {"name", "task", "languages", "has_sample_data"}


def test_benchmarks_list_the_languages_of_the_configured_data(api, admin_user, tmp_path):
    root = tmp_path / "xcopa"
    (root / "et").mkdir(parents=True)
    shutil.copy(get_benchmark("xcopa").sample_root / "sw" / "test.sw.jsonl", root / "et" / "test.et.jsonl")
    benchmark_source_set(name="xcopa", path=str(root))
    row = next(r for r in api(admin_user).get("/api/v1/benchmarks/").json() if r["name"] == "xcopa")
    assert row["languages"] == ["et"] and row["uses_sample_data"] is False and row["has_sample_data"] is True


def test_an_admin_creates_a_run_and_reads_it_back(api, admin_user, plain_base):
    client = api(admin_user)
    response = client.post("/api/v1/evaluation-runs/", {"base_model": plain_base.name, "benchmarks": ["xcopa"],
                                                        "languages": ["sw", "fr"], "limit": 2}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and isinstance(body["id"], int)
    detail = client.get(f"/api/v1/evaluation-runs/{body['id']}/").json()
    assert detail["status"] == "queued" and detail["results"] == []
    assert detail["progress"] == {"done": 0, "total": 2, "percent": 0.0}
    assert detail["generation"] == {"max_new_tokens": 512, "batch_size": 8}
    assert detail["languages"] == ["sw", "fr"] and detail["model"] == "plain"


def test_a_run_reports_results_skips_and_summaries(api, annotator, finished_run):
    run = finished_run(results=[("xcopa", "sw", "accuracy", 75.0, 4), ("xcopa", "ta", "accuracy", 50.0, 4)],
                       skipped=[("xcopa", "ar", "xcopa has no ar data")])
    body = api(annotator).get(f"/api/v1/evaluation-runs/{run.id}/").json()
    assert body["status"] == "succeeded"
    # settings/note/counts: how a value was computed, and the off-target rate's three counts (empty for accuracy).
    extra = {"settings": {}, "note": "", "on_target": None, "off_target": None, "not_measurable": None}
    assert body["results"] == [
        {"benchmark": "xcopa", "language": "sw", "metric": "accuracy", "value": 75.0, "n": 4, **extra},
        {"benchmark": "xcopa", "language": "ta", "metric": "accuracy", "value": 50.0, "n": 4, **extra}]
    assert body["skipped"] == [{"benchmark": "xcopa", "language": "ar", "reason": "xcopa has no ar data"}]
    [summary] = body["summaries"]
    # mean (75 + 50) / 2 = 62.5; parity 62.5 / 75 × 100 = 83.3
    assert summary["mean"] == 62.5 and summary["parity"] == pytest.approx(83.333, abs=1e-3)
    assert summary["best_language"] == "sw"
    assert body["tokens_per_second"] == 123.4 and body["error"] == ""


@pytest.mark.parametrize(
    "body, field, fragment",
    [
        ({"benchmarks": ["xcopa"], "languages": ["xx-nope"]}, "languages", "unknown language"),
        ({"benchmarks": ["nope"]}, "benchmarks", "unknown benchmark"),
        ({"benchmarks": []}, "benchmarks", ""),
        ({"benchmarks": ["xcopa"], "model_version": "no-such-version"}, "model_version", "no model version"),
    ],
)
def test_invalid_input_answers_400_with_the_field(api, admin_user, plain_base, body, field, fragment):
    body = {"base_model": plain_base.id, **body} if "model_version" not in body else body
    response = api(admin_user).post("/api/v1/evaluation-runs/", body, format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert not EvaluationRun.objects.exists()


def test_a_malformed_file_answers_400_naming_file_and_line(api, admin_user, plain_base, tmp_path):
    root = Path(shutil.copytree(get_benchmark("open-ended").sample_root, tmp_path / "oe"))
    (root / "ta.jsonl").write_text('{"instruction": "ok"}\n{"instruction": ""}\n', encoding="utf-8")
    benchmark_source_set(name="open-ended", path=str(root))
    response = api(admin_user).post("/api/v1/evaluation-runs/", {"base_model": plain_base.id,
                                                                 "benchmarks": ["open-ended"]}, format="json")
    assert response.status_code == 400
    assert response.json()["benchmarks"] == [f'{root / "ta.jsonl"} line 2: "instruction" must be a non-empty string']


def test_retry_and_cancel(api, admin_user, finished_run):
    client = api(admin_user)
    failed = finished_run(status=JobStatus.FAILED)
    response = client.post(f"/api/v1/evaluation-runs/{failed.id}/retry/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert client.post(f"/api/v1/evaluation-runs/{failed.id}/retry/").status_code == 409
    response = client.post(f"/api/v1/evaluation-runs/{failed.id}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/evaluation-runs/{failed.id}/cancel/").status_code == 409


def test_outputs_download_is_for_admins(api, admin_user, annotator, finished_run):
    run = finished_run(records=[output_record("flores-en-xx", "sw", "1", "Soko <b>la</b> kijiji")])
    response = api(admin_user).get(f"/api/v1/evaluation-runs/{run.id}/outputs")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert b"".join(response.streaming_content).decode().count("\n") == 1
    assert api(annotator).get(f"/api/v1/evaluation-runs/{run.id}/outputs").status_code == 403
    assert api().get(f"/api/v1/evaluation-runs/{run.id}/outputs").status_code in (401, 403)


def test_annotators_read_but_do_not_start_or_retry(api, annotator, finished_run, plain_base):
    run = finished_run(status=JobStatus.FAILED)
    client = api(annotator)
    assert client.get("/api/v1/evaluation-runs/").status_code == 200
    assert client.get(f"/api/v1/evaluation-runs/{run.id}/").status_code == 200
    assert client.post("/api/v1/evaluation-runs/", {"base_model": plain_base.id, "benchmarks": ["xcopa"]},
                       format="json").status_code == 403
    assert client.post(f"/api/v1/evaluation-runs/{run.id}/retry/").status_code == 403
    assert api().get(f"/api/v1/evaluation-runs/{run.id}/").status_code in (401, 403)
    assert api().get("/api/v1/benchmarks/").status_code in (401, 403)


def test_the_schema_documents_the_evaluation_endpoints(api, admin_user):
    response = api(admin_user).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for route in ("/api/v1/benchmarks/", "/api/v1/evaluation-runs/", "/api/v1/evaluation-runs/{run_id}/retry/"):
        assert route in text
