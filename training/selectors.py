"""Reads for the training API, admin and pages: runs, their metric series and artifacts."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet

from training.models import ModelVersion, TrainingMetric, TrainingRun

# DPO's own metrics drawn beside the loss (TRL's names, as logged to metrics.jsonl).
DPO_SERIES = ("rewards/accuracies", "rewards/margins")


def runs_listed() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("base_model", "created_by").prefetch_related("versions")


def run_detail(run_id: int) -> TrainingRun | None:
    return (TrainingRun.objects.select_related("base_model", "start_version", "export", "sft_export",
                                               "sft_dataset__instruction_set", "created_by")
            .prefetch_related("versions").filter(pk=run_id).first())


def final_version(run: TrainingRun) -> ModelVersion | None:
    """The version the run ends with (DPO's for sft_dpo), or None while it has not got that far."""
    versions = {version.kind: version for version in run.versions.all()}
    return next((versions[stage] for stage in reversed(run.stages) if stage in versions), None)


def run_log_metrics(run: TrainingRun) -> list[TrainingMetric]:
    """The run's "log" lines in the order they were written: stage by stage, then by line.

    Not the model's ordering: that sorts stages by name, which puts "dpo" before "sft".
    """
    position = {stage: index for index, stage in enumerate(run.stages)}
    rows = TrainingMetric.objects.filter(run=run, event="log")
    return sorted(rows, key=lambda metric: (position.get(metric.stage, len(position)), metric.line))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def run_chart(run: TrainingRun, metrics: list[TrainingMetric] | None = None) -> dict[str, Any]:
    """Chart.js points ({x: step, y: value}): the loss of each stage, and DPO's reward accuracy and margin."""
    metrics = run_log_metrics(run) if metrics is None else metrics
    chart: dict[str, Any] = {"loss": {stage: [] for stage in run.stages}, "dpo": {name: [] for name in DPO_SERIES}}
    for metric in metrics:
        loss = _number(metric.values.get("loss"))
        if loss is not None and metric.stage in chart["loss"]:
            chart["loss"][metric.stage].append({"x": metric.step, "y": loss})
        if metric.stage == "dpo":
            for name in DPO_SERIES:
                value = _number(metric.values.get(name))
                if value is not None:
                    chart["dpo"][name].append({"x": metric.step, "y": value})
    return chart


def manifest_summary(version: ModelVersion) -> dict[str, Any]:
    """What a person checks first in a manifest: steps, scale, precision, data, final loss, code."""
    manifest = version.manifest or {}
    train = (manifest.get("metrics") or {}).get("train") or {}
    return {
        "global_step": manifest.get("global_step"),
        "world_size": manifest.get("world_size"),
        "precision": manifest.get("precision"),
        "train_rows": manifest.get("train_rows"),
        "train_loss": train.get("train_loss"),
        "train_runtime": train.get("train_runtime"),
        "code_version": manifest.get("code_version"),
        "finished_at": manifest.get("finished_at"),
    }
