"""Creating, cancelling and retrying training runs; every parameter is validated before anything is queued.

Parameters: the presets in training/configs/{sft,dpo}_paper.yaml, then the run's `params` on top. `params` holds
TRL/PEFT field names (`max_steps`, `learning_rate`, `lora_r`, `beta`, ...); keys at the top level apply to every
stage, keys under "sft" or "dpo" to that stage only. The validation is the scripts' own (training/scripts/config.py),
run here with placeholder output paths and without the GPU-host checks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import Export, JobStatus
from crossfeed.errors import Conflict, InvalidInput
from training.models import BaseModel, ModelVersion, TrainingRun
from training.scripts.config import ConfigError, DPORunConfig, SFTRunConfig, config_from_dict
from training.services.registry import check_model_path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# Set by Crossfeed for every run, never by the user.
MANAGED_FIELDS = {"model_name_or_path", "output_dir", "train_file", "eval_file", "adapter_path",
                  "resume_from_checkpoint"}
STAGE_CONFIG = {"sft": SFTRunConfig, "dpo": DPORunConfig}
STALE_AFTER = timedelta(minutes=3)
# A ConfigError about a field Crossfeed fills in is about the input it was filled from.
MANAGED_FIELD_SOURCE = {"model_name_or_path": "base_model", "train_file": "export", "adapter_path": "start_version"}


@cache
def preset(stage: str) -> dict[str, Any]:
    """The paper preset of a stage, minus the fields Crossfeed manages."""
    values = yaml.safe_load((CONFIGS / f"{stage}_paper.yaml").read_text(encoding="utf-8"))
    return {key: value for key, value in values.items() if key not in MANAGED_FIELDS}


@cache
def user_fields(stage: str) -> list[str]:
    return [f.name for f in dataclasses.fields(STAGE_CONFIG[stage]) if f.name not in MANAGED_FIELDS]


def params_template(kind: str) -> dict[str, dict[str, Any]]:
    """The presets of the stages a kind runs, as `params` to edit: {"sft": {...}, "dpo": {...}}.

    Without "seed": the run's own seed field sets it, and a per-stage seed here would silently override that.
    """
    stages = ["sft", "dpo"] if kind == TrainingRun.Kind.SFT_DPO else [kind]
    return {stage: {key: copy.deepcopy(value) for key, value in preset(stage).items() if key != "seed"}
            for stage in stages if stage in STAGE_CONFIG}


def accelerate_configs() -> list[str]:
    """The names that params.accelerate_config may take: the files in training/configs/accelerate/."""
    return sorted(path.stem for path in (CONFIGS / "accelerate").glob("*.yaml"))


def runs_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "training"


def export_train_file(export: Export) -> str:
    from annotation.services.exports import export_folder

    name = next((f["name"] for f in export.files if f["name"].startswith("train.")), None)
    if name is None:
        raise InvalidInput(f"export {export.id} has no train split (every row went to test)", field="export")
    return str(export_folder(export) / name)


def stage_values(run: TrainingRun, stage: str, *, data_file: str, adapter_path: str | None) -> dict[str, Any]:
    """The complete config of one stage: preset, then params, then the managed fields."""
    params = run.params or {}
    # A top-level key applies to every stage that has such a setting (max_prompt_length only to DPO).
    shared = {key: value for key, value in params.items() if key not in STAGE_CONFIG and key in user_fields(stage)}
    values = {**preset(stage), "seed": run.seed, **shared, **(params.get(stage) or {})}
    values.update({
        "model_name_or_path": run.base_model.path,
        "output_dir": str(Path(run.output_dir) / stage),
        "train_file": data_file,
        "resume_from_checkpoint": "auto",
    })
    if stage == "dpo":
        values["adapter_path"] = adapter_path
    return values


def _check_params(params: Any) -> None:
    if not isinstance(params, dict):
        raise InvalidInput('expected an object such as {"max_steps": 100, "dpo": {"beta": 0.1}}', field="params")
    for key, value in params.items():
        if key in STAGE_CONFIG:
            if not isinstance(value, dict):
                raise InvalidInput(f"{key}: expected an object of {key.upper()} settings", field="params")
            unknown = set(value) - set(user_fields(key))
            if unknown:
                raise InvalidInput(f"{key}.{sorted(unknown)[0]}: not a {key.upper()} setting; allowed: "
                                   f"{', '.join(user_fields(key))}", field="params")
        elif key in MANAGED_FIELDS:
            raise InvalidInput(f"{key}: set by Crossfeed for each run, not a parameter", field="params")
        elif key == "accelerate_config":
            # How the worker launches (execution._command), not a script setting. Only a name from our folder:
            # the worker builds the config's path from it, so no path may come in here.
            if value not in accelerate_configs():
                raise InvalidInput(f"accelerate_config: one of {', '.join(accelerate_configs())}", field="params")
        elif all(key not in user_fields(stage) for stage in STAGE_CONFIG):
            raise InvalidInput(f"{key}: unknown setting; use TRL/PEFT names such as max_steps, learning_rate, "
                               "per_device_train_batch_size, lora_r, beta", field="params")


def check_sft_file(path: str) -> str:
    """An SFT file on the server: JSONL with a non-empty `messages` list of {role, content} on every line."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"{path}: no such file", field="sft_file")
    count_sft_rows(file)
    return str(file.resolve())


def count_sft_rows(file: Path, *, label: str | None = None) -> int:
    """The number of rows of an SFT file; the first bad line raises InvalidInput naming `label` (the file's name
    as the person knows it) and the line."""
    label = label or file.name
    rows = 0
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"{label} line {number}: not valid JSON ({exc})", field="sft_file") from None
            messages = value.get("messages") if isinstance(value, dict) else None
            if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            ):
                raise InvalidInput(f'{label} line {number}: expected {{"messages": [{{"role": ..., '
                                   '"content": ...}, ...]}', field="sft_file")
            rows += 1
    if rows == 0:
        raise InvalidInput(f"{label} holds no rows: nothing to train on", field="sft_file")
    return rows


def _data_for(kind: str, export: Export | None, sft_export: Export | None, sft_file: str) -> dict[str, str]:
    data: dict[str, str] = {}
    if kind in ("dpo", "sft_dpo"):
        if export is None:
            raise InvalidInput("DPO needs a preference export", field="export")
        if export.kind != Export.Kind.PREFERENCE or export.status != JobStatus.SUCCEEDED:
            raise InvalidInput(f"export {export.id} is not a finished preference export", field="export")
        data["dpo"] = export_train_file(export)
    if kind in ("sft", "sft_dpo"):
        if sft_export is not None:
            if sft_export.kind != Export.Kind.SFT or sft_export.status != JobStatus.SUCCEEDED:
                raise InvalidInput(f"export {sft_export.id} is not a finished SFT export", field="sft_export")
            data["sft"] = export_train_file(sft_export)
        elif sft_file:
            data["sft"] = check_sft_file(sft_file)
        else:
            raise InvalidInput("SFT needs data: an SFT export or an uploaded file of messages rows", field="sft_data")
    return data


@transaction.atomic
def training_run_create(
    *,
    kind: str,
    base_model: BaseModel,
    created_by=None,
    start_version: ModelVersion | None = None,
    export: Export | None = None,
    sft_export: Export | None = None,
    sft_file: str = "",
    params: dict | None = None,
    num_processes: int = 1,
    seed: int = 42,
    enqueue: bool = True,
) -> TrainingRun:
    if kind not in TrainingRun.Kind.values:
        raise InvalidInput(f"one of {', '.join(TrainingRun.Kind.values)}", field="kind")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or not 1 <= num_processes <= 64:
        raise InvalidInput("a whole number from 1 to 64", field="num_processes")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InvalidInput("a whole number from 0 to 2147483647", field="seed")
    check_model_path(base_model.path, field="base_model")
    if start_version is not None and (
        kind != "dpo" or start_version.kind != "sft" or start_version.base_model_id != base_model.id
    ):
        raise InvalidInput("a run can start from a version only for DPO on an SFT version of the same base model",
                           field="start_version")
    params = params if params is not None else {}
    _check_params(params)
    data = _data_for(kind, export, sft_export, sft_file)
    run = TrainingRun.objects.create(
        kind=kind, base_model=base_model, start_version=start_version, export=export, sft_export=sft_export,
        sft_file=data.get("sft", "") if sft_export is None else "", params=params, num_processes=num_processes,
        seed=seed, created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    run.output_dir = str(runs_root() / f"run-{run.pk}")
    resolved = {}
    for stage in run.stages:
        adapter = start_version.adapter_path if start_version is not None else None
        values = stage_values(run, stage, data_file=data[stage], adapter_path=adapter)
        try:
            config_from_dict(values, STAGE_CONFIG[stage], check_environment=False)
        except ConfigError as exc:
            source = MANAGED_FIELD_SOURCE.get(str(exc).split(":", 1)[0], "params")
            if source == "export" and stage == "sft":
                source = "sft_export" if sft_export is not None else "sft_file"
            raise InvalidInput(f"{stage}: {exc}", field=source) from None
        resolved[stage] = values
    run.resolved = resolved
    run.save(update_fields=["output_dir", "resolved"])
    if enqueue:
        training_run_enqueue(run)
    return run


def newest_export(*, campaign_id: int, kind: str) -> Export | None:
    return (Export.objects.filter(campaign_id=campaign_id, kind=kind, status=JobStatus.SUCCEEDED)
            .order_by("-created_at", "-id").first())


def training_run_retrain(*, run: TrainingRun, created_by=None) -> TrainingRun:
    """A new run like `run` (kind, base model, start version, params, processes, seed) on the newest data.

    DPO data: the newest finished preference export of the campaign of the run's export. SFT data: the newest
    finished SFT export of the campaign of the run's SFT export; an uploaded SFT file is kept as it is, because it
    is not campaign data and nothing newer of it exists.
    """
    export = run.export
    if export is not None:
        export = newest_export(campaign_id=export.campaign_id, kind=Export.Kind.PREFERENCE) or export
    sft_export = run.sft_export
    if sft_export is not None:
        sft_export = newest_export(campaign_id=sft_export.campaign_id, kind=Export.Kind.SFT) or sft_export
    return training_run_create(
        kind=run.kind, base_model=run.base_model, start_version=run.start_version, export=export,
        sft_export=sft_export, sft_file=run.sft_file if sft_export is None else "", params=run.params,
        num_processes=run.num_processes, seed=run.seed, created_by=created_by,
    )


def training_run_enqueue(run: TrainingRun) -> None:
    from training.tasks import run_training

    transaction.on_commit(lambda: run_training.enqueue(run.pk))


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one is stopped by its worker within a few seconds."""
    now = timezone.now()
    if TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=now, error="cancelled before it started"
    ):
        pass
    elif not TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True):
        raise Conflict(f"run {run.pk} is {run.get_status_display()}: there is nothing to cancel")
    run.refresh_from_db()
    return run


@transaction.atomic
def training_run_retry(*, run: TrainingRun) -> TrainingRun:
    """Queue a failed or cancelled run again; each stage resumes from its newest checkpoint."""
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED, error="", cancel_requested=False, finished_at=None
    )
    if not updated:
        raise Conflict(f"run {run.pk} is {run.get_status_display()}: only failed or cancelled runs can be retried")
    run.refresh_from_db()
    training_run_enqueue(run)
    return run


def training_runs_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Runs whose worker stopped sending heartbeats are failed, with the reason; Retry resumes them."""
    now = now or timezone.now()
    stale = TrainingRun.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after)
    count = 0
    for run in stale:
        reason = (f"the worker {run.worker or ''} stopped responding (no heartbeat since "
                  f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); Retry resumes from the last checkpoint")
        count += TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=reason, finished_at=now
        )
    return count
