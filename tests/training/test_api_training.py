"""REST API v1, training: base models, runs, uploads (ARCHITECTURE.md is the contract)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from annotation.models import JobStatus
from tests.training.conftest import FAST, record_progress
from training.models import BaseModel, ModelVersion, TrainingRun
from training.services.runs import training_run_create

pytestmark = pytest.mark.usefixtures("media")

VERSION_KEYS = {"id", "name", "kind", "parent", "run", "adapter_path", "export", "dataset_sha256", "metrics",
                "created_at"}
RUN_KEYS = {"id", "kind", "status", "stage", "progress", "metrics", "model_version", "versions", "error",
            "log_tail", "created_at", "started_at", "finished_at"}


def dpo_body(base, export, **extra) -> dict:
    return {"kind": "dpo", "base_model": base.id, "export": export.id, **extra}


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


# --- base models --------------------------------------------------------------------------------------------------


def test_it_lists_base_models_with_their_versions(admin_api, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    record_progress(run, status="succeeded", versions=["dpo"])
    response = admin_api.get(reverse("api-models"))
    assert response.status_code == 200
    [model] = response.json()
    assert model["name"] == "tiny" and model["path"] == base.path
    [version] = model["versions"]
    assert set(version) == VERSION_KEYS
    assert version["kind"] == "dpo" and version["run"] == run.id and version["adapter_path"].endswith("dpo/adapter")


def test_it_registers_a_base_model(admin_api, admin_user, tiny_model_dir):
    response = admin_api.post(reverse("api-models"), {"name": "tiny-2", "path": str(tiny_model_dir),
                                                       "notes": "for tests"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "tiny-2" and body["versions"] == [] and body["notes"] == "for tests"
    assert BaseModel.objects.get(pk=body["id"]).created_by == admin_user


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"name": "x"}, "path", "required"),
        ({"name": "x", "path": ""}, "path", "a local model folder or a hub id"),
        ({"name": "x", "path": "/no/such/folder"}, "path", "no config.json"),
        ({"name": "x", "path": "not a model"}, "path", "neither an existing folder nor a hub id"),
        ({"name": "", "path": "org/model"}, "name", "required"),
        ({"name": "TINY", "path": "org/model"}, "name", "already exists"),
    ],
)
def test_it_refuses_a_base_model_naming_the_field(admin_api, base, body, field, message):
    response = admin_api.post(reverse("api-models"), body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert BaseModel.objects.count() == 1


# --- creating runs ------------------------------------------------------------------------------------------------


def test_it_creates_a_run_and_queues_it_on_commit(admin_api, admin_user, base, preference_export,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(reverse("api-training-runs"),
                                  dpo_body(base, preference_export, params={"max_steps": 7}, seed=3), format="json")
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get()
    assert response.json() == {"id": run.id, "status": "queued"}
    assert (run.created_by, run.seed, run.resolved["dpo"]["max_steps"]) == (admin_user, 3, 7)
    task = DBTaskResult.objects.get()
    assert task.queue_name == "training" and task.args_kwargs["args"] == [run.id]


def test_it_creates_an_sft_then_dpo_run_from_an_sft_export(admin_api, base, preference_export, sft_export):
    body = {"kind": "sft_dpo", "base_model": base.id, "export": preference_export.id,
            "sft_data": {"export": sft_export.id}, "num_processes": 2, "params": {"accelerate_config": "cpu"}}
    response = admin_api.post(reverse("api-training-runs"), body, format="json")
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get()
    assert run.sft_export == sft_export and run.num_processes == 2 and set(run.resolved) == {"sft", "dpo"}
    assert "accelerate_config" not in run.resolved["sft"]  # a launch setting, not a script field


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"kind": "ppo"}, "kind", "not a valid choice"),
        ({"base_model": 999}, "base_model", "does not exist"),
        ({"export": None}, "export", "DPO needs a preference export"),
        ({"export": 999}, "export", "does not exist"),
        ({"kind": "sft"}, "sft_data", "SFT needs data"),
        ({"kind": "sft", "sft_data": {}}, "sft_data", "give one of"),
        ({"kind": "sft", "sft_data": {"file": "/no/such.jsonl"}}, "sft_data", "no such file"),
        ({"kind": "sft", "sft_data": {"export": 999}}, "sft_data", "does not exist"),
        ({"params": {"learing_rate": 1e-4}}, "params", "learing_rate: unknown setting"),
        ({"params": {"dpo": {"beta": 0}}}, "params", "beta: must be positive"),
        ({"params": {"accelerate_config": "../../etc/passwd"}}, "params", "accelerate_config: one of cpu"),
        ({"params": [1]}, "params", "expected an object"),
        ({"num_processes": 0}, "num_processes", "from 1 to 8"),
        ({"num_processes": "two"}, "num_processes", "valid integer"),
        ({"seed": -1}, "seed", "from 0 to"),
        ({"start_version": 999}, "start_version", "does not exist"),
    ],
)
def test_it_refuses_every_invalid_value_naming_the_field(admin_api, base, preference_export, change, field,
                                                         message):
    response = admin_api.post(reverse("api-training-runs"), {**dpo_body(base, preference_export), **change},
                              format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert message in str(response.json()[field])
    assert not TrainingRun.objects.exists()


def test_it_refuses_an_sft_export_as_preference_data(admin_api, base, sft_export):
    response = admin_api.post(reverse("api-training-runs"), dpo_body(base, sft_export), format="json")
    assert response.status_code == 400 and "not a finished preference export" in response.json()["export"][0]


def test_it_refuses_a_start_version_for_sft(admin_api, base, preference_export, uploaded_sft_file):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    record_progress(run, status="succeeded", versions=["dpo"])
    body = {"kind": "sft", "base_model": base.id, "sft_data": {"file": str(uploaded_sft_file)},
            "start_version": ModelVersion.objects.get().id}
    response = admin_api.post(reverse("api-training-runs"), body, format="json")
    assert response.status_code == 400 and "only for DPO" in response.json()["start_version"][0]


def test_a_hub_id_base_model_is_refused_for_training_on_the_base_model_field(admin_api, preference_export):
    hub = BaseModel.objects.create(name="hub", path="meta-llama/Llama-2-7b-hf")
    response = admin_api.post(reverse("api-training-runs"), dpo_body(hub, preference_export), format="json")
    assert response.status_code == 400
    assert "not a local model folder" in response.json()["base_model"][0]


# --- reading runs -------------------------------------------------------------------------------------------------


def test_it_shows_a_run_with_progress_log_metrics_in_order_and_its_final_version(admin_api, base, preference_export,
                                                                                  sft_export):
    run = training_run_create(kind="sft_dpo", base_model=base, export=preference_export, sft_export=sft_export,
                              enqueue=False)
    record_progress(run, status="succeeded", step=3, total=3, versions=["sft", "dpo"])
    response = admin_api.get(reverse("api-training-run", args=[run.id]))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= RUN_KEYS
    assert (body["kind"], body["status"], body["stage"]) == ("sft_dpo", "succeeded", "dpo")
    assert body["progress"] == {"step": 3, "total": 3, "eta_seconds": None}
    # Only "log" lines, in the order written: the SFT stage's first (not "dpo" < "sft" by name).
    assert [(m["stage"], m["step"]) for m in body["metrics"]] == [("sft", 1), ("sft", 2), ("sft", 3), ("dpo", 1),
                                                                  ("dpo", 2), ("dpo", 3)]
    assert {m["event"] for m in body["metrics"]} == {"log"} and "loss" in body["metrics"][0]["values"]
    dpo = ModelVersion.objects.get(kind="dpo")
    assert body["model_version"] == dpo.id and {v["kind"] for v in body["versions"]} == {"sft", "dpo"}
    assert body["error"] == "" and body["log_tail"].startswith("step 2")


def test_it_fails_a_run_whose_worker_went_silent_before_showing_it(admin_api, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, worker="gpu-3:77",
                                                 heartbeat_at=timezone.now() - timedelta(minutes=30))
    body = admin_api.get(reverse("api-training-run", args=[run.id])).json()
    assert body["status"] == "failed" and "gpu-3:77 stopped responding" in body["error"]
    assert body["model_version"] is None


def test_it_lists_runs_newest_first(admin_api, base, preference_export):
    first = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    second = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    body = admin_api.get(reverse("api-training-runs")).json()
    assert [row["id"] for row in body] == [second.id, first.id]
    assert body[0]["progress"] == {"step": 0, "total": 0, "eta_seconds": None} and "metrics" not in body[0]


def test_it_answers_404_for_an_unknown_run(admin_api, db):
    assert admin_api.get(reverse("api-training-run", args=[12345])).status_code == 404
    assert admin_api.post(reverse("api-training-run-cancel", args=[12345])).status_code == 404


# --- cancel and retry ---------------------------------------------------------------------------------------------


def test_it_cancels_and_retries_with_409_on_conflicts(admin_api, base, preference_export,
                                                      django_capture_on_commit_callbacks):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    cancel, retry = (reverse("api-training-run-cancel", args=[run.id]),
                     reverse("api-training-run-retry", args=[run.id]))
    assert admin_api.post(retry).status_code == 409  # queued: nothing to retry
    response = admin_api.post(cancel)
    assert response.status_code == 202 and response.json() == {"id": run.id, "status": "cancelled"}
    conflict = admin_api.post(cancel)
    assert conflict.status_code == 409 and "nothing to cancel" in conflict.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(retry)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert DBTaskResult.objects.filter(queue_name="training").count() == 1


def test_a_cancel_of_a_running_run_is_a_request(admin_api, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    response = admin_api.post(reverse("api-training-run-cancel", args=[run.id]))
    assert response.status_code == 202 and response.json()["status"] == "running"
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested


# --- uploads ------------------------------------------------------------------------------------------------------


def upload_of(name: str, content: bytes) -> dict:
    return {"file": SimpleUploadedFile(name, content, content_type="application/x-ndjson")}


def test_it_stores_an_uploaded_sft_file_under_its_own_name(admin_api, media, sft_file, base):
    response = admin_api.post(reverse("api-training-uploads"),
                              upload_of("../../../etc/evil name.jsonl", sft_file.read_bytes()), format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["rows"] == 4
    stored = list((media / "training" / "uploads").iterdir())
    assert [str(path) for path in stored] == [body["path"]]
    assert len(stored[0].stem) == 32 and stored[0].suffix == ".jsonl"  # a uuid, nothing of the client's name
    created = admin_api.post(reverse("api-training-runs"), {"kind": "sft", "base_model": base.id,
                                                            "sft_data": {"file": body["path"]}}, format="json")
    assert created.status_code == 201, created.json()
    assert TrainingRun.objects.get().sft_file == body["path"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"messages": [{"role": "user", "content": "a"}]}\n{"messages": [}\n', "mine.jsonl line 2: not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "a"}]}\n\n{"text": "no messages"}\n', "mine.jsonl line 3"),
        (b"\n\n", "holds no rows"),
    ],
)
def test_it_refuses_a_bad_upload_with_its_line_and_stores_nothing(admin_api, media, content, message):
    response = admin_api.post(reverse("api-training-uploads"), upload_of("mine.jsonl", content), format="multipart")
    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert list((media / "training" / "uploads").iterdir()) == []


def test_it_asks_for_the_file_field(admin_api, db):
    response = admin_api.post(reverse("api-training-uploads"), {"other": io.BytesIO(b"x")}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


# --- who may call -------------------------------------------------------------------------------------------------

ENDPOINTS = [("GET", "api-models", False), ("POST", "api-models", False), ("GET", "api-training-runs", False),
             ("POST", "api-training-runs", False), ("POST", "api-training-uploads", False),
             ("GET", "api-training-run", True), ("POST", "api-training-run-cancel", True),
             ("POST", "api-training-run-retry", True)]


@pytest.mark.parametrize("method, name, with_run", ENDPOINTS)
def test_it_refuses_annotators_and_anonymous_callers(api, annotator, base, preference_export, method, name,
                                                     with_run):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    url = reverse(name, args=[run.id] if with_run else [])
    for client, status in ((api(annotator), 403), (api(), 401)):
        response = client.get(url) if method == "GET" else client.post(url, {}, format="json")
        assert response.status_code == status, (name, status)
    assert TrainingRun.objects.get().status == JobStatus.QUEUED


# --- end to end: the API, the real worker, a real (tiny) run ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dpo_run_posted_through_the_api_is_trained_by_the_worker(api, admin_user, base, preference_export):
    client = api(admin_user)
    response = client.post(reverse("api-training-runs"), dpo_body(base, preference_export, params=FAST),
                           format="json")
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    call_command("db_worker", "--batch", "--queue-name", "training")
    body = client.get(reverse("api-training-run", args=[run_id])).json()
    assert body["status"] == "succeeded", body["error"] + body["log_tail"]
    assert body["progress"]["step"] == body["progress"]["total"] == 4
    losses = [m["values"]["loss"] for m in body["metrics"] if "loss" in m["values"]]
    assert len(losses) == 4 and all(isinstance(loss, float) for loss in losses)
    version = ModelVersion.objects.get(pk=body["model_version"])
    assert version.kind == "dpo" and version.run_id == run_id and version.export == preference_export
    assert (version.adapter_path.endswith("adapter") and body["versions"][0]["id"] == version.id)


def test_the_openapi_schema_documents_the_training_endpoints(tmp_path):
    import yaml

    path = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    paths = yaml.safe_load(path.read_text())["paths"]
    for route, methods in {"/api/v1/models/": {"get", "post"}, "/api/v1/training-runs/": {"get", "post"},
                           "/api/v1/training-runs/{run_id}/": {"get"},
                           "/api/v1/training-runs/{run_id}/cancel/": {"post"},
                           "/api/v1/training-runs/{run_id}/retry/": {"post"},
                           "/api/v1/training-runs/uploads/": {"post"}}.items():
        assert methods <= set(paths[route]), route
