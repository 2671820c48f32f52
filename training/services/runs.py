"""Creating, cancelling and retrying training runs; every parameter is validated before anything is queued.

Parameters: a preset (training/configs/<stage>_scaled.yaml, with its batch, logging and checkpoint settings fitted
to the run's training rows by training/presets.py; or <stage>_paper.yaml with params {"preset": "paper"}), then
the run's `params` on top. `params` holds TRL/PEFT field names (`max_steps`, `learning_rate`, `lora_r`, `beta`,
...); keys at the top level apply to every stage, keys under "sft" or "dpo" to that stage only. The validation is
the scripts' own (training/scripts/config.py), run here with placeholder output paths and without the GPU-host
checks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
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
from instructions.models import InstructionExport
from training.models import BaseModel, ModelVersion, TrainingRun
from training.presets import SCALED_FIELDS, optimizer_steps, scaled_settings
from training.scripts.config import (
    INT32_MAX,
    LONE_SURROGATE,
    ConfigError,
    DPORunConfig,
    SFTRunConfig,
    config_from_dict,
)
from training.services.registry import check_model_path
from training.services.trainer_group import trainer_group_of, trainer_group_orphaned, trainer_group_stop

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# Set by Crossfeed for every run, never by the user.
MANAGED_FIELDS = {"model_name_or_path", "output_dir", "train_file", "eval_file", "adapter_path",
                  "resume_from_checkpoint", "chat_template", "chat_template_name"}
# training/configs/<stage>_<preset>.yaml: "scaled" fits the batch, warm-up and logging to the data
# (training/presets.py); "paper" is the seed paper's absolute settings. A run picks one with params {"preset": ...}.
PRESETS = ("scaled", "paper")
DEFAULT_PRESET = "scaled"
STAGE_CONFIG = {"sft": SFTRunConfig, "dpo": DPORunConfig}
STALE_AFTER = timedelta(minutes=3)
DEFAULT_MAX_TRAINING_PROCESSES = 8
DB_MAX_TRAINING_PROCESSES = 64  # TrainingRun's CHECK constraint
# A ConfigError about a field Crossfeed fills in is about the input it was filled from.
MANAGED_FIELD_SOURCE = {"model_name_or_path": "base_model", "train_file": "export", "adapter_path": "start_version"}


@cache
def preset(stage: str, name: str = DEFAULT_PRESET) -> dict[str, Any]:
    """A preset of a stage (see PRESETS), minus the fields Crossfeed manages."""
    values = yaml.safe_load((CONFIGS / f"{stage}_{name}.yaml").read_text(encoding="utf-8"))
    return {key: value for key, value in values.items() if key not in MANAGED_FIELDS}


@cache
def user_fields(stage: str) -> list[str]:
    return [f.name for f in dataclasses.fields(STAGE_CONFIG[stage]) if f.name not in MANAGED_FIELDS]


def params_template(kind: str) -> dict[str, dict[str, Any]]:
    """The presets of the stages a kind runs, as `params` to edit: {"sft": {...}, "dpo": {...}}.

    Without "seed": the run's own seed field sets it, and a per-stage seed here would silently override that. Without
    the settings the scaled preset works out from the data (training/presets.py): given here, they would stay fixed.
    """
    stages = ["sft", "dpo"] if kind == TrainingRun.Kind.SFT_DPO else [kind]
    left_out = {"seed", *SCALED_FIELDS}
    return {stage: {key: copy.deepcopy(value) for key, value in preset(stage).items() if key not in left_out}
            for stage in stages if stage in STAGE_CONFIG}


def accelerate_configs() -> list[str]:
    """The names that params.accelerate_config may take: the files in training/configs/accelerate/."""
    return sorted(path.stem for path in (CONFIGS / "accelerate").glob("*.yaml"))


def runs_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "training"


def uploads_root() -> Path:
    """Where SFT uploads are stored (training/services/uploads.py), and the only folder sft_file may name."""
    return runs_root() / "uploads"


def max_training_processes() -> int:
    """The most processes one run may ask for: CROSSFEED_MAX_TRAINING_PROCESSES (default 8, one per GPU of an
    8-GPU host), never above the 64 the database allows. Every accelerate config here is one machine's."""
    configured = settings.CROSSFEED.get("MAX_TRAINING_PROCESSES", DEFAULT_MAX_TRAINING_PROCESSES)
    return max(1, min(int(configured), DB_MAX_TRAINING_PROCESSES))


def export_train_file(export: Export) -> str:
    from annotation.services.exports import export_folder

    name = next((f["name"] for f in export.files if f["name"].startswith("train.")), None)
    if name is None:
        raise InvalidInput(f"export {export.id} has no train split (every row went to test)", field="export")
    return str(export_folder(export) / name)


def stage_values(run: TrainingRun, stage: str, *, data_file: str, adapter_path: str | None,
                 rows: int | None = None) -> dict[str, Any]:
    """The complete config of one stage: preset, then (scaled preset) the settings fitted to its `rows` training rows,
    then params, then the managed fields (the base model's chat template among them)."""
    params = run.params or {}
    name = params.get("preset", DEFAULT_PRESET)
    # A top-level key applies to every stage that has such a setting (max_prompt_length only to DPO).
    shared = {key: value for key, value in params.items() if key not in STAGE_CONFIG and key in user_fields(stage)}
    given = {**shared, **(params.get(stage) or {})}
    values = {**preset(stage, name), "seed": run.seed, **given}
    epochs, max_steps = values.get("num_train_epochs"), values.get("max_steps")
    if name == "scaled" and rows and _is_number(epochs) and isinstance(max_steps, int):
        values.update(scaled_settings(rows=rows, processes=run.num_processes, epochs=float(epochs),
                                      max_steps=max_steps, given=given))
    values.update({
        "model_name_or_path": run.base_model.path,
        "output_dir": str(Path(run.output_dir) / stage),
        "train_file": data_file,
        "resume_from_checkpoint": "auto",
        "chat_template_name": run.base_model.chat_template_name,
        "chat_template": run.base_model.chat_template or None,
    })
    if stage == "dpo":
        values["adapter_path"] = adapter_path
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
        elif key == "preset":
            if value not in PRESETS:
                raise InvalidInput(f"preset: one of {', '.join(PRESETS)} (training/configs/<stage>_<preset>.yaml)",
                                   field="params")
        elif key == "accelerate_config":
            # How the worker launches (execution._command), not a script setting. Only a name from our folder:
            # the worker builds the config's path from it, so no path may come in here.
            if value not in accelerate_configs():
                raise InvalidInput(f"accelerate_config: one of {', '.join(accelerate_configs())}", field="params")
        elif all(key not in user_fields(stage) for stage in STAGE_CONFIG):
            raise InvalidInput(f"{key}: unknown setting; use TRL/PEFT names such as max_steps, learning_rate, "
                               "per_device_train_batch_size, lora_r, beta", field="params")


def check_sft_file(path: str) -> tuple[str, int]:
    """An uploaded SFT file (its absolute path, and its rows): a file directly in the upload folder, named as
    POST training-runs/uploads/ answered, with a non-empty `messages` list of {role, content} on every line.

    Only the upload folder: the path comes from a client, and any other file the server can read (its
    environment, a key) would be opened and echoed back in the error of its first line."""
    root = uploads_root().resolve()
    candidate = Path(path)
    if not path or ".." in candidate.parts or not candidate.is_absolute():
        raise InvalidInput("give the path an upload answered (POST training-runs/uploads/): an absolute path in "
                           f"{root}, without '..'", field="sft_file")
    try:
        # strict: the file must exist; resolve() follows every symlink, so a link out of the folder is caught below.
        file = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput(f"{path}: no such file in the upload folder {root}", field="sft_file") from None
    if file.parent != root or file.name.startswith(".") or not file.is_file():
        raise InvalidInput(f"{path}: not a file in the upload folder {root}; upload it with POST "
                           "training-runs/uploads/ and give the path that answers", field="sft_file")
    return str(file), count_sft_rows(file)


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
            except RecursionError:  # json recurses once per level: "[" * 100000 would be a 500
                raise InvalidInput(f"{label} line {number}: the JSON is nested too deeply", field="sft_file") from None
            messages = value.get("messages") if isinstance(value, dict) else None
            if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            ):
                raise InvalidInput(f'{label} line {number}: expected {{"messages": [{{"role": ..., '
                                   '"content": ...}, ...]}', field="sft_file")
            for index, message in enumerate(messages):
                # A "\ud800" escape decodes to a lone surrogate, which the tokenizer cannot take: the run would
                # fail hours later, at its first batch.
                if LONE_SURROGATE.search(message["role"]) or LONE_SURROGATE.search(message["content"]):
                    raise InvalidInput(f"{label} line {number}: messages[{index}] holds a lone surrogate escape "
                                       "(\\ud800-\\udfff), which is not a character", field="sft_file")
            rows += 1
    if rows == 0:
        raise InvalidInput(f"{label} holds no rows: nothing to train on", field="sft_file")
    return rows


def _train_rows(export: Export) -> int:
    return next((int(f.get("rows") or 0) for f in export.files if f["name"].startswith("train.")), 0)


def dataset_train_file(dataset: InstructionExport) -> tuple[str, int]:
    """An instruction set's SFT export as training data: its one language file, or sft-all.jsonl (and its rows)."""
    from instructions.services.exports import train_file

    if dataset.status != JobStatus.SUCCEEDED:
        raise InvalidInput(f"instruction set export {dataset.id} is {dataset.get_status_display()}: only a "
                           "succeeded export can be trained on", field="sft_dataset")
    return train_file(dataset)


def _data_for(kind: str, export: Export | None, sft_export: Export | None, sft_file: str,
              sft_dataset: InstructionExport | None = None) -> dict[str, tuple[str, int]]:
    """{stage: (training file, its rows)}."""
    data: dict[str, tuple[str, int]] = {}
    if kind in ("dpo", "sft_dpo"):
        if export is None:
            raise InvalidInput("DPO needs a preference export", field="export")
        if export.kind != Export.Kind.PREFERENCE or export.status != JobStatus.SUCCEEDED:
            raise InvalidInput(f"export {export.id} is not a finished preference export", field="export")
        data["dpo"] = (export_train_file(export), _train_rows(export))
    if kind in ("sft", "sft_dpo"):
        if sum(source is not None and source != "" for source in (sft_export, sft_dataset, sft_file)) > 1:
            raise InvalidInput("give one kind of SFT data: an SFT export, an instruction set export or an uploaded "
                               "file", field="sft_data")
        if sft_dataset is not None:
            data["sft"] = dataset_train_file(sft_dataset)
        elif sft_export is not None:
            if sft_export.kind != Export.Kind.SFT or sft_export.status != JobStatus.SUCCEEDED:
                raise InvalidInput(f"export {sft_export.id} is not a finished SFT export", field="sft_export")
            data["sft"] = (export_train_file(sft_export), _train_rows(sft_export))
        elif sft_file:
            data["sft"] = check_sft_file(sft_file)
        else:
            raise InvalidInput("SFT needs data: an SFT export, an instruction set export or an uploaded file of "
                               "messages rows", field="sft_data")
    return data


def _check_stage_config(stage: str, values: dict[str, Any], sft_source: str) -> None:
    """The scripts' own validation (training/scripts/config.py), without the GPU host's checks; its error names
    the field, and is put on the input the field came from."""
    try:
        config_from_dict(values, STAGE_CONFIG[stage], check_environment=False)
    except ConfigError as exc:
        source = MANAGED_FIELD_SOURCE.get(str(exc).split(":", 1)[0], "params")
        if source == "export" and stage == "sft":
            source = sft_source
        raise InvalidInput(f"{stage}: {exc}", field=source) from None


def _check_step_count(stage: str, values: dict[str, Any], rows: int, num_processes: int) -> None:
    """The optimizer steps a stage will run must fit the run's step columns (PositiveIntegerField: 2**31 - 1 on
    PostgreSQL); a run whose count overflows them could no longer be tracked. max_steps is bounded by the config;
    an epoch count is bounded here, where the rows are known (packing only lowers the count)."""
    steps = optimizer_steps(rows=max(rows, 1), micro_batch=values["per_device_train_batch_size"],
                            accumulation=values["gradient_accumulation_steps"], processes=num_processes,
                            epochs=float(values["num_train_epochs"]), max_steps=values["max_steps"])
    if steps > INT32_MAX:
        rows_per_step = values["per_device_train_batch_size"] * values["gradient_accumulation_steps"] * num_processes
        raise InvalidInput(f"{stage}: num_train_epochs: {float(values['num_train_epochs']):g} epochs of {rows} rows "
                           f"at {rows_per_step} rows per optimizer step make {steps} steps, more than {INT32_MAX}; "
                           "set fewer epochs or max_steps", field="params")


@transaction.atomic
def training_run_create(
    *,
    kind: str,
    base_model: BaseModel,
    created_by=None,
    start_version: ModelVersion | None = None,
    export: Export | None = None,
    sft_export: Export | None = None,
    sft_dataset: InstructionExport | None = None,
    sft_file: str = "",
    params: dict | None = None,
    num_processes: int = 1,
    seed: int = 42,
    enqueue: bool = True,
) -> TrainingRun:
    if kind not in TrainingRun.Kind.values:
        raise InvalidInput(f"one of {', '.join(TrainingRun.Kind.values)}", field="kind")
    most = max_training_processes()
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or not 1 <= num_processes <= most:
        raise InvalidInput(f"a whole number from 1 to {most} (CROSSFEED_MAX_TRAINING_PROCESSES)",
                           field="num_processes")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= INT32_MAX:
        raise InvalidInput(f"a whole number from 0 to {INT32_MAX}", field="seed")
    check_model_path(base_model.path, field="base_model")
    if start_version is not None and (
        kind != "dpo" or start_version.kind != "sft" or start_version.base_model_id != base_model.id
    ):
        raise InvalidInput("a run can start from a version only for DPO on an SFT version of the same base model",
                           field="start_version")
    params = params if params is not None else {}
    _check_params(params)
    data = _data_for(kind, export, sft_export, sft_file, sft_dataset)
    # Where an error about the SFT stage's data file belongs.
    sft_source = "sft_export" if sft_export is not None else "sft_dataset" if sft_dataset is not None else "sft_file"
    run = TrainingRun.objects.create(
        kind=kind, base_model=base_model, start_version=start_version, export=export, sft_export=sft_export,
        sft_dataset=sft_dataset if "sft" in data else None,
        sft_file=data["sft"][0] if "sft" in data and sft_source == "sft_file" else "", params=params,
        num_processes=num_processes,
        seed=seed, created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    run.output_dir = str(runs_root() / f"run-{run.pk}")
    resolved = {}
    for stage in run.stages:
        adapter = start_version.adapter_path if start_version is not None else None
        data_file, rows = data[stage]
        # First the params as given over the preset, so that an absurd value is refused in its own name (and
        # before any arithmetic with it), then the config fitted to the data, which is what will run.
        given = stage_values(run, stage, data_file=data_file, adapter_path=adapter)
        _check_stage_config(stage, given, sft_source)
        values = stage_values(run, stage, data_file=data_file, adapter_path=adapter, rows=rows)
        _check_step_count(stage, values, rows, num_processes)
        _check_stage_config(stage, values, sft_source)
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
    finished SFT export of the campaign of the run's SFT export, or the newest finished export of the instruction
    set of the run's instruction set export; an uploaded SFT file is kept as it is, because it is not campaign data
    and nothing newer of it exists.
    """
    export = run.export
    if export is not None:
        export = newest_export(campaign_id=export.campaign_id, kind=Export.Kind.PREFERENCE) or export
    sft_export = run.sft_export
    if sft_export is not None:
        sft_export = newest_export(campaign_id=sft_export.campaign_id, kind=Export.Kind.SFT) or sft_export
    sft_dataset = run.sft_dataset
    if sft_dataset is not None:
        sft_dataset = (InstructionExport.objects.filter(instruction_set_id=sft_dataset.instruction_set_id,
                                                        status=JobStatus.SUCCEEDED)
                       .order_by("-created_at", "-id").first() or sft_dataset)
    return training_run_create(
        kind=run.kind, base_model=run.base_model, start_version=run.start_version, export=export,
        sft_export=sft_export, sft_dataset=sft_dataset,
        sft_file=run.sft_file if sft_export is None and sft_dataset is None else "", params=run.params,
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


def training_run_retry(*, run: TrainingRun) -> TrainingRun:
    """Queue a failed or cancelled run again; each stage resumes from its newest checkpoint.

    A trainer that an earlier attempt left running on this host is stopped first; if it cannot be stopped, the retry
    is refused (two trainers would write the same checkpoints and manifest). One on another host is stopped by the
    worker there before it starts the run again, and the trainer's lock file keeps a second one off the folder.
    """
    group = trainer_group_of(run) if run.status in (JobStatus.FAILED, JobStatus.CANCELLED) else None
    if group is not None and not trainer_group_stop(group=group, reason=f"training run {run.pk} is retried"):
        raise Conflict(f"run {run.pk}: the trainer of its last attempt (process group {group.pgid}) is still running "
                       "and could not be stopped; stop it, then retry")
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
            status=JobStatus.QUEUED, error="", cancel_requested=False, finished_at=None
        )
        if not updated:
            raise Conflict(f"run {run.pk} is {run.get_status_display()}: only failed or cancelled runs can be "
                           "retried")
        run.refresh_from_db()
        training_run_enqueue(run)
    return run


def training_runs_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Fail the running runs whose worker is gone, with the reason; Retry resumes them.

    A worker is gone when it sent no heartbeat for `stale_after`, or at once when its trainer is on this host and
    was left behind: the kernel gave the trainer another parent, so the worker that watched it died (SIGKILL, the
    OOM killer). Either way the trainer's process group is stopped first where this host can reach it, so that a
    failed run never trains on and a retry never starts a second trainer beside it.
    """
    now = now or timezone.now()
    count = 0
    for run in TrainingRun.objects.filter(status=JobStatus.RUNNING):
        group = trainer_group_of(run)
        orphaned = group is not None and trainer_group_orphaned(run, group)
        silent = run.heartbeat_at is not None and run.heartbeat_at < now - stale_after
        if not (orphaned or silent):
            continue
        if orphaned:
            reason = (f"the worker {run.worker} died while the run was running (its trainer, left running, was "
                      "stopped); Retry resumes from the last checkpoint")
        else:
            reason = (f"the worker {run.worker or ''} stopped responding (no heartbeat since "
                      f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); Retry resumes from the last checkpoint")
        if group is not None and not trainer_group_stop(group=group, reason=f"training run {run.pk}: {reason}"):
            logger.error("training run %s stays running: its trainer (process group %s) could not be stopped",
                         run.pk, group.pgid)
            continue
        # Only the attempt that was looked at: a worker that claimed the run in the meantime keeps it.
        marked = TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING, attempts=run.attempts)
        if not orphaned:
            marked = marked.filter(heartbeat_at__lt=now - stale_after)
        changes = {"status": JobStatus.FAILED, "error": reason, "finished_at": now}
        if group is not None:
            changes["process_group"] = None
        count += marked.update(**changes)
    return count
