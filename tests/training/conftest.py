import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny random Llama model, built once per test session from the platform's texts."""
    from training.services.registry import tiny_model_build

    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    tiny_model_build(output_dir=folder, register=False)
    return folder


# --- Django-side fixtures for the API, admin and page tests ------------------------------------------------------
# (test_services_runs.py keeps its own copies; a module's fixture overrides these.)

# A 4-step run with batches of 2: each training subprocess takes about 10 s on two CPU cores.
FAST = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1, "max_length": 128, "max_prompt_length": 64, "warmup_steps": 0,
        "gradient_checkpointing": False}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def base(db, tiny_model_dir):
    from training.services.registry import base_model_register

    return base_model_register(name="tiny", path=str(tiny_model_dir))


@pytest.fixture
def judged(campaign, import_items, make_annotator):
    """Four sw→ta items, each ranked alike by two annotators."""
    from annotation.models import Item
    from annotation.services.judgments import judgment_submit
    from tests.conftest import item_line, new_key, ranks_for

    import_items(campaign, [item_line(f"t-{n}") for n in range(4)])
    users = [make_annotator(f"ta{n}", ["ta"], ["sw"]) for n in range(2)]
    for item in Item.objects.all():
        for user in users:
            judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    return campaign


@pytest.fixture
def preference_export(media, judged, admin_user):
    from annotation.services.exports import export_create, export_run

    export = export_create(campaign=judged, created_by=admin_user, test_fraction=0.0, enqueue=False)
    return export_run(export_id=export.id)


@pytest.fixture
def sft_export(media, judged, admin_user):
    from annotation.services.exports import export_create, export_run

    export = export_create(campaign=judged, created_by=admin_user, kind="sft", test_fraction=0.0, enqueue=False)
    return export_run(export_id=export.id)


@pytest.fixture
def sft_file(tmp_path):
    path = tmp_path / "sft.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Habari {n}?"}, {"role": "assistant", "content": "Nzuri."}]}
            for n in range(4)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def uploaded_sft_file(media, sft_file):
    """sft_file stored as POST training-runs/uploads/ stores it: sft_file may name nothing else."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from training.services.uploads import sft_upload_store

    stored = sft_upload_store(upload=SimpleUploadedFile("sft.jsonl", sft_file.read_bytes()))
    return Path(stored.path)


def record_progress(run, *, status="running", step=2, total=4, versions=()):
    """Put a run where a worker would have it: status, step, "log" lines per stage (and one of another event),
    and model versions for the given stages; no training."""
    from training.models import ModelVersion, TrainingMetric, TrainingRun

    TrainingRun.objects.filter(pk=run.pk).update(status=status, stage=run.stages[-1], step=step, total_steps=total,
                                                 eta_seconds=30 if status == "running" else None,
                                                 log_tail="step 2 <b>not markup</b>")
    TrainingMetric.objects.filter(run=run).delete()  # called again as the run moves on
    for stage in run.stages:
        for n in range(1, step + 1):
            values = {"loss": 2.0 - n / 10, "learning_rate": 1e-4}
            if stage == "dpo":
                values |= {"rewards/accuracies": n / step, "rewards/margins": n / 10}
            TrainingMetric.objects.create(run=run, stage=stage, line=n, step=n, event="log", values=values)
        TrainingMetric.objects.create(run=run, stage=stage, line=step + 1, step=step, event="save",
                                      values={"checkpoint": f"checkpoint-{step}"})
    parent = None
    for stage in versions:
        parent, _created = ModelVersion.objects.get_or_create(
            name=f"tiny-{stage}-run{run.pk}",
            defaults={"base_model": run.base_model, "parent": parent, "run": run, "kind": stage,
                      "adapter_path": f"{run.output_dir}/{stage}/adapter", "dataset_sha256": "ab" * 32,
                      "manifest": {"global_step": step, "world_size": 1, "precision": "fp32", "train_rows": 8,
                                   "metrics": {"train": {"train_loss": 1.5}}, "code_version": "0123456789abcdef"}},
        )
    run.refresh_from_db()
    return run
