import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.models import JobStatus
from crossfeed.errors import Conflict, InvalidInput
from tests.training.conftest import FAST
from training.models import BaseModel, ModelVersion, TrainingMetric, TrainingRun
from training.services.execution import training_run_execute
from training.services.registry import base_model_register
from training.services.runs import (
    training_run_cancel,
    training_run_create,
    training_run_retry,
    training_runs_fail_stale,
    uploads_root,
)

# media, base, judged and preference_export come from tests/training/conftest.py.
pytestmark = pytest.mark.usefixtures("media")


def test_a_base_model_needs_a_saved_model_folder_or_a_hub_id(db, tmp_path):
    with pytest.raises(InvalidInput, match="no config.json"):
        base_model_register(name="x", path=str(tmp_path))
    with pytest.raises(InvalidInput, match="neither an existing folder nor a hub id"):
        base_model_register(name="x", path="not a model")
    assert base_model_register(name="hub", path="meta-llama/Llama-2-7b-hf").path == "meta-llama/Llama-2-7b-hf"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"learning_rate": -1}, "learning_rate: must be positive"),
        ({"dpo": {"beta": 0}}, "beta: must be positive"),
        ({"lora_r": "eight"}, "lora_r: expected an integer"),
        ({"learing_rate": 1e-4}, "learing_rate: unknown setting"),
        ({"lora_target_modules": ["q_proj", "lm_head"]}, "lm_head cannot carry a LoRA adapter"),
        ({"output_dir": "/etc"}, "output_dir: set by Crossfeed"),
        ({"dpo": {"packing": True}}, "dpo.packing: not a DPO setting"),
        ([1, 2], "expected an object"),
    ],
)
def test_invalid_parameters_are_refused_before_queueing(base, preference_export, params, message):
    with pytest.raises(InvalidInput, match=message):
        training_run_create(kind="dpo", base_model=base, export=preference_export, params=params, enqueue=False)
    assert not TrainingRun.objects.exists()


def test_missing_data_and_model_are_refused(base, tmp_path, preference_export):
    with pytest.raises(InvalidInput, match="DPO needs a preference export"):
        training_run_create(kind="dpo", base_model=base, enqueue=False)
    uploads = uploads_root()
    uploads.mkdir(parents=True, exist_ok=True)
    empty = uploads / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InvalidInput, match="holds no rows"):
        training_run_create(kind="sft", base_model=base, sft_file=str(empty), enqueue=False)
    bad = uploads / "bad.jsonl"
    bad.write_text('{"text": "no messages"}\n')
    with pytest.raises(InvalidInput, match="line 1"):
        training_run_create(kind="sft", base_model=base, sft_file=str(bad), enqueue=False)
    gone = BaseModel.objects.create(name="gone", path=str(tmp_path / "deleted-model"))
    with pytest.raises(InvalidInput, match="no config.json"):
        training_run_create(kind="dpo", base_model=gone, export=preference_export, enqueue=False)
    assert not TrainingRun.objects.exists()


def test_the_resolved_config_uses_the_paper_preset_under_the_params(base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False,
                              params={"preset": "paper", "max_steps": 7, "dpo": {"beta": 0.2}})
    config = run.resolved["dpo"]
    assert (config["max_steps"], config["beta"], config["learning_rate"], config["lr_scheduler_type"]) == (
        7, 0.2, 5.0e-4, "cosine")
    assert (config["warmup_steps"], config["max_length"], config["max_prompt_length"]) == (100, 1024, 512)
    assert config["train_file"].endswith("train.jsonl") and config["resume_from_checkpoint"] == "auto"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sft_then_dpo_registers_two_versions_with_metrics(base, sft_export, preference_export):
    run = training_run_create(kind="sft_dpo", base_model=base, export=preference_export, sft_export=sft_export,
                              params=FAST, enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail
    sft, dpo = ModelVersion.objects.get(kind="sft"), ModelVersion.objects.get(kind="dpo")
    assert dpo.parent == sft and dpo.export == preference_export and sft.export == sft_export
    assert len(dpo.dataset_sha256) == 64 and dpo.config["beta"] == 0.1
    assert (run.step, run.total_steps, run.stage) == (4, 4, "dpo")
    logged = TrainingMetric.objects.filter(run=run, stage="dpo", event="log")
    assert sum("rewards/accuracies" in metric.values for metric in logged) == 4


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_crashing_script_fails_with_its_log_and_registers_nothing(preference_export, tiny_model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    model = base_model_register(name="broken", path=str(broken))
    run = training_run_create(kind="dpo", base_model=model, export=preference_export, params=FAST, enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == JobStatus.FAILED
    assert "exited with code" in run.error and "Last log lines" in run.error and run.log_tail
    assert not ModelVersion.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_run_and_retry_resumes_from_the_checkpoint(base, preference_export, monkeypatch):
    monkeypatch.setattr("training.services.execution.HEARTBEAT_SECONDS", 0.2)
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False,
                              params={**FAST, "max_steps": 400, "save_steps": 1})
    worker = threading.Thread(target=training_run_execute, kwargs={"run_id": run.id, "poll_seconds": 0.2})
    worker.start()
    deadline = time.monotonic() + 120
    while TrainingRun.objects.get(pk=run.id).step < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    training_run_cancel(run=TrainingRun.objects.get(pk=run.id))
    worker.join(timeout=120)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and 2 <= run.step < 400
    with pytest.raises(Conflict):
        training_run_cancel(run=run)
    stopped_at = run.step
    run = training_run_retry(run=run)
    TrainingRun.objects.filter(pk=run.pk).update(resolved={"dpo": {**run.resolved["dpo"], "max_steps": stopped_at
                                                                   + 2}})
    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == JobStatus.SUCCEEDED, run.error
    begins = [m.values for m in TrainingMetric.objects.filter(run=run, event="train_begin")]
    assert len(begins) == 2
    log = Path(run.output_dir, "dpo", "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    resumed = [json.loads(line) for line in log if json.loads(line)["event"] == "train_begin"][-1]
    assert resumed["step"] >= stopped_at  # the second attempt started from the checkpoint, not from step 0


def test_a_silent_worker_leaves_the_run_failed(base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, worker="gpu-7:4242",
                                                 heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert training_runs_fail_stale() == 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "gpu-7:4242 stopped responding" in run.error
    assert training_run_retry(run=run).status == JobStatus.QUEUED
