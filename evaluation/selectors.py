"""Reads for the evaluation pages and API: result tables per benchmark, summaries, comparisons, example outputs."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from annotation.languages import get_language
from annotation.models import JobStatus
from evaluation.benchmarks import get_benchmark
from evaluation.metrics import summarize
from evaluation.models import LOWER_IS_BETTER, NEUTRAL_METRICS, EvaluationResult, EvaluationRun
from evaluation.outputs import read_records
from training.models import ModelVersion

OUTPUTS_PAGE = 50


def runs_visible_to(user) -> QuerySet[EvaluationRun]:
    """Every signed-in user reads every run: results say how models do per language, nothing about people."""
    return EvaluationRun.objects.select_related("base_model", "model_version", "created_by")


def higher_is_better(metric: str) -> bool | None:
    """True, False (off-target rate), or None when neither direction is better (mean length)."""
    if metric in NEUTRAL_METRICS:
        return None
    return metric not in LOWER_IS_BETTER


def language_info(code: str) -> dict[str, str]:
    spec = get_language(code)
    if spec is None:
        return {"code": code, "name": code, "tier": "", "script": "", "direction": "ltr"}
    return {"code": code, "name": spec.name, "tier": spec.tier, "script": spec.script, "direction": spec.direction}


def _metric_order(benchmark_name: str, metrics: Iterable[str]) -> list[str]:
    benchmark = get_benchmark(benchmark_name)
    known = list(benchmark.metrics) if benchmark else []
    if "bleu" in known and "spbleu" not in known:  # scoring adds spBLEU to every translation benchmark
        known.insert(known.index("bleu") + 1, "spbleu")
    return sorted(set(metrics), key=lambda m: (known.index(m) if m in known else len(known), m))


@dataclass(frozen=True)
class Cell:
    value: float | None
    n: int
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why there is no value (e.g. "spBLEU: model missing")
    on_target: int | None = None  # the off-target rate's three counts; None for other metrics
    off_target: int | None = None
    not_measurable: int | None = None

    @property
    def total(self) -> int | None:
        """Outputs judged for the off-target rate, measurable or not."""
        if self.not_measurable is None:
            return None
        return (self.on_target or 0) + (self.off_target or 0) + self.not_measurable

    @property
    def not_measurable_share(self) -> float | None:
        """Not-measurable outputs as a percentage of all outputs (shown beside the off-target rate)."""
        total = self.total
        return None if not total else 100 * (self.not_measurable or 0) / total


_CELL_FIELDS = ("benchmark", "language", "metric", "value", "n", "settings", "reason", "on_target", "off_target",
                "not_measurable")


def result_cells(run: EvaluationRun) -> dict[tuple[str, str, str], Cell]:
    """(benchmark, language, metric) -> value, n, settings and counts, for the rows that were not skipped."""
    rows = EvaluationResult.objects.filter(run=run, skipped=False).values_list(*_CELL_FIELDS)
    return {(b, lang, m): Cell(value, n, settings or {}, reason, on, off, nm)
            for b, lang, m, value, n, settings, reason, on, off, nm in rows}


def benchmark_tables(run: EvaluationRun) -> list[dict[str, Any]]:
    """Per benchmark: languages × metrics, skipped languages with reasons, the summary and the chart data."""
    cells = result_cells(run)
    skips = EvaluationResult.objects.filter(run=run, skipped=True).values_list("benchmark", "language", "reason")
    tables = []
    for name in run.benchmarks:
        benchmark = get_benchmark(name)
        own = {key: cell for key, cell in cells.items() if key[0] == name}
        metrics = _metric_order(name, (m for _, _, m in own))
        languages = sorted({lang for _, lang, _ in own})
        rows = [{"language": language_info(lang),
                 "cells": [own.get((name, lang, metric)) for metric in metrics]} for lang in languages]
        tables.append({
            "name": name,
            "title": benchmark.title if benchmark else name,
            "task": benchmark.task if benchmark else "",
            "metrics": [{"name": m, "better": higher_is_better(m)} for m in metrics],
            "rows": rows,
            "skipped": [{"language": language_info(lang), "reason": reason}
                        for b, lang, reason in skips if b == name],
            "summary": _summaries(own, metrics),
            "chart": {"labels": languages, "datasets": _chart_datasets(own, name, metrics, languages)},
            "methods": _methods(own, metrics),
        })
    return tables


NOT_MEASURABLE_LABEL = "off_target_rate: not measurable %"


def _chart_datasets(cells: dict[tuple[str, str, str], Cell], name: str, metrics: list[str],
                    languages: list[str]) -> list[dict[str, Any]]:
    """One bar per metric; the off-target rate is followed by the share of outputs it could not judge."""
    datasets = []
    # Mean length is not on the 0–100 scale of the others: the table has it, the chart does not.
    for metric in (m for m in metrics if higher_is_better(m) is not None):
        datasets.append({"label": metric, "data": [_rounded(cells.get((name, lang, metric))) for lang in languages]})
        if metric == "off_target_rate":
            shares = [cells.get((name, lang, metric)) for lang in languages]
            datasets.append({"label": NOT_MEASURABLE_LABEL, "data": [
                None if cell is None or cell.not_measurable_share is None else round(cell.not_measurable_share, 2)
                for cell in shares]})
    return datasets


def _methods(cells: dict[tuple[str, str, str], Cell], metrics: list[str]) -> list[dict[str, Any]]:
    """Per metric, each distinct way it was computed (sacrebleu signature, segmenter, ...) and its languages."""
    methods = []
    for metric in metrics:
        groups: dict[str, dict[str, Any]] = {}
        for (_, lang, m), cell in sorted(cells.items()):
            if m != metric or not (cell.settings or cell.note):
                continue
            described = cell.settings.get("signature") or "; ".join(
                f"{key}: {value}" for key, value in cell.settings.items())
            key = f"{described}|{cell.note}"
            group = groups.setdefault(key, {"metric": metric, "description": described, "note": cell.note,
                                            "settings": cell.settings, "languages": []})
            group["languages"].append(lang)
        methods.extend(groups.values())
    return methods


def _rounded(cell: Cell | None) -> float | None:
    return None if cell is None or cell.value is None else round(cell.value, 2)


def _summaries(cells: dict[tuple[str, str, str], Cell], metrics: list[str]) -> list[dict[str, Any]]:
    """Mean and parity over languages, for the metrics where higher is better (parity needs that)."""
    summaries = []
    for metric in metrics:
        if higher_is_better(metric) is not True:
            continue
        scores = {lang: cell.value for (_, lang, m), cell in cells.items() if m == metric and cell.value is not None}
        summary = summarize(scores)
        summaries.append({"metric": metric, "mean": summary.mean, "parity": summary.parity,
                          "best_language": summary.best_language, "languages": len(scores)})
    return summaries


def run_payload_results(run: EvaluationRun) -> tuple[list[dict], list[dict], list[dict]]:
    """(results, skipped, summaries) for the API."""
    rows = EvaluationResult.objects.filter(run=run).order_by("benchmark", "language", "metric")
    results = [{"benchmark": r.benchmark, "language": r.language, "metric": r.metric, "value": r.value, "n": r.n,
                "settings": r.settings, "note": r.reason, "on_target": r.on_target, "off_target": r.off_target,
                "not_measurable": r.not_measurable} for r in rows if not r.skipped]
    skipped = [{"benchmark": r.benchmark, "language": r.language, "reason": r.reason} for r in rows if r.skipped]
    summaries = [{"benchmark": table["name"], **summary} for table in benchmark_tables(run)
                 for summary in table["summary"]]
    return results, skipped, summaries


def results_csv(run: EvaluationRun) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "model", "benchmark", "language", "metric", "value", "n", "skipped", "reason",
                     "on_target", "off_target", "not_measurable", "settings"])
    for r in EvaluationResult.objects.filter(run=run).order_by("benchmark", "language", "metric"):
        value = "" if r.value is None else f"{r.value:.4f}"
        counts = ["" if count is None else count for count in (r.on_target, r.off_target, r.not_measurable)]
        writer.writerow([run.pk, run.model_label, r.benchmark, r.language, r.metric, value, r.n,
                         "yes" if r.skipped else "", r.reason, *counts,
                         json.dumps(r.settings, ensure_ascii=False, sort_keys=True) if r.settings else ""])
    return buffer.getvalue()


# --- comparison -----------------------------------------------------------------------------------------------


def delta_of(metric: str, a: float | None, b: float | None) -> dict[str, Any] | None:
    """b − a, and whether that is better, worse or the same (by the metric's direction)."""
    if a is None or b is None:
        return None
    delta = b - a
    direction = higher_is_better(metric)
    # Pages show one decimal: a change that reads ±0.0 must not be coloured as better or worse.
    if direction is None or round(delta, 1) == 0:
        verdict = "same"
    else:
        verdict = "better" if (delta > 0) == direction else "worse"
    return {"value": delta, "verdict": verdict}


def comparison(run_a: EvaluationRun, run_b: EvaluationRun, *, tiers: list[str] | None = None,
               scripts: list[str] | None = None, all_metrics: bool = False) -> dict[str, Any]:
    """Languages × (benchmark, metric) for the benchmarks both runs have; b − a in every cell."""
    cells_a, cells_b = result_cells(run_a), result_cells(run_b)
    names = [name for name in run_b.benchmarks if name in run_a.benchmarks]
    columns = []
    for name in names:
        benchmark = get_benchmark(name)
        present = {m for (b, _, m) in itertools.chain(cells_a, cells_b) if b == name}
        chosen = _metric_order(name, present) if all_metrics else [benchmark.primary_metric] if benchmark else []
        columns += [{"benchmark": name, "metric": m, "better": higher_is_better(m)} for m in chosen if m in present]
    languages = sorted({lang for (b, lang, _) in itertools.chain(cells_a, cells_b) if b in names})
    infos = [language_info(lang) for lang in languages]
    infos = [info for info in infos if (not tiers or info["tier"] in tiers) and (not scripts or info["script"] in
                                                                                  scripts)]
    rows = []
    for info in infos:
        row_cells = []
        for column in columns:
            key = (column["benchmark"], info["code"], column["metric"])
            a, b = cells_a.get(key), cells_b.get(key)
            a_value, b_value = (a.value if a else None), (b.value if b else None)
            row_cells.append({"a": a_value, "b": b_value, "delta": delta_of(column["metric"], a_value, b_value),
                              "benchmark": column["benchmark"],
                              # Beside an off-target rate, always: the share of outputs it could not judge.
                              "a_not_measurable": a.not_measurable_share if a else None,
                              "b_not_measurable": b.not_measurable_share if b else None})
        rows.append({"language": info, "cells": row_cells})
    means = []
    for index, column in enumerate(columns):
        pairs = [(row["cells"][index]["a"], row["cells"][index]["b"]) for row in rows]
        both = [(a, b) for a, b in pairs if a is not None and b is not None]
        mean_a = sum(a for a, _ in both) / len(both) if both else None
        mean_b = sum(b for _, b in both) / len(both) if both else None
        means.append({"a": mean_a, "b": mean_b, "delta": delta_of(column["metric"], mean_a, mean_b),
                      "n": len(both), **_mean_not_measurable(rows, index)})
    return {"columns": columns, "rows": rows, "means": means}


def _mean_not_measurable(rows: list[dict[str, Any]], index: int) -> dict[str, float | None]:
    """Mean not-measurable share of a column over the languages where both runs have one."""
    pairs = [(row["cells"][index]["a_not_measurable"], row["cells"][index]["b_not_measurable"]) for row in rows]
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not both:
        return {"a_not_measurable": None, "b_not_measurable": None}
    return {"a_not_measurable": sum(a for a, _ in both) / len(both),
            "b_not_measurable": sum(b for _, b in both) / len(both)}


def latest_run_of(subject, *, benchmarks: list[str] | None = None) -> EvaluationRun | None:
    """The newest succeeded run of a version (or, for a BaseModel, of that model evaluated bare)."""
    runs = EvaluationRun.objects.filter(status=JobStatus.SUCCEEDED)
    if isinstance(subject, ModelVersion):
        runs = runs.filter(model_version=subject)
    else:
        runs = runs.filter(model_version=None, base_model=subject)
    for run in runs.order_by("-finished_at", "-id"):
        if not benchmarks or set(benchmarks) & set(run.benchmarks):
            return run
    return None


def version_and_parent_runs(version: ModelVersion) -> tuple[EvaluationRun | None, EvaluationRun | None]:
    """(run of what the version was trained from, run of the version): the default comparison."""
    b = latest_run_of(version)
    a = latest_run_of(version.parent or version.base_model, benchmarks=b.benchmarks if b else None)
    return a, b


# --- example outputs ------------------------------------------------------------------------------------------


def example_outputs(run: EvaluationRun, *, benchmark: str, language: str, off_target_only: bool = False,
                    page: int = 1) -> dict[str, Any]:
    """One page of a language's outputs in example order (the file holds them in generation order, longest prompt
    first), off-target ones marked. One language is at most a benchmark's test split, so it is sorted in memory."""
    records = [record for record in read_records(run.outputs_path, benchmark=benchmark, language=language)
               if not off_target_only or record.get("off_target") is True]
    records.sort(key=_natural_id)
    start = (page - 1) * OUTPUTS_PAGE
    chunk = records[start:start + OUTPUTS_PAGE]
    return {"records": chunk, "has_next": len(records) > start + OUTPUTS_PAGE, "page": page, "total": len(records),
            "expected": language_info(chunk[0].get("expected_language", language) if chunk else language)}


def _natural_id(record: dict[str, Any]) -> tuple[int, int, str]:
    """Numeric ids in numeric order ("2" before "10"), then the others by text."""
    text = str(record.get("id", ""))
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
