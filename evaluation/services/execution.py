"""Running an evaluation on a worker: claim it, load the model once, then benchmark by benchmark, language by
language, generate or score the examples not yet in the outputs file, and store each language's results as soon as
it is complete.

Every batch appends its outputs to the run's JSONL (fsynced), moves the progress, beats the heart and looks for a
cancel request. A crash marks the run failed with the reason and keeps the file; Retry runs only what is missing
from it, and the results come from the file, so a run in three attempts scores exactly as a run in one.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import JobStatus
from evaluation.benchmarks import BenchmarkDataError, Example
from evaluation.inference import (
    Generation,
    LoadedModel,
    Throughput,
    benchmark_prompt,
    generate,
    load_model,
    score_options,
)
from evaluation.models import EvaluationResult, EvaluationRun
from evaluation.outputs import OutputLog, read_records
from evaluation.scoring import off_target_mark, score, spbleu_model_path
from evaluation.services.runs import Unit, model_spec, run_plan

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


class RunCancelled(Exception):
    pass


@dataclass
class Tracker:
    """Progress of one attempt, written to the run row at most every HEARTBEAT_SECONDS (and when forced)."""

    run_id: int
    total: int
    done: int
    done_at_start: int = 0
    started: float = field(default_factory=time.monotonic)
    last_beat: float = 0.0
    throughput: Throughput = field(default_factory=Throughput)

    def advance(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.beat()

    def eta_seconds(self) -> int | None:
        finished = self.done - self.done_at_start
        if finished <= 0 or self.done >= self.total:
            return None
        # e.g. 40 examples in 20 s this attempt, 60 left: 20 / 40 × 60 = 30 s.
        return int((time.monotonic() - self.started) / finished * (self.total - self.done))

    def beat(self) -> None:
        self.last_beat = time.monotonic()
        EvaluationRun.objects.filter(pk=self.run_id).update(
            progress_done=self.done, progress_total=self.total, eta_seconds=self.eta_seconds(),
            tokens_per_second=self.throughput.tokens_per_second, heartbeat_at=timezone.now(),
        )
        if EvaluationRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
            raise RunCancelled


def evaluation_run_execute(*, run_id: int) -> EvaluationRun:
    now = timezone.now()
    # A conditional UPDATE claims the run: of two workers handed the same task, only one gets a row count of 1.
    claimed = EvaluationRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}", cancel_requested=False, error="",
    )
    run = EvaluationRun.objects.select_related("base_model", "model_version").get(pk=run_id)
    if not claimed:
        logger.info("evaluation run %s is %s, not queued: not running it", run_id, run.status)
        return run
    keep = "The outputs so far are kept; Retry continues after them."
    try:
        _execute(run)
        status, error = JobStatus.SUCCEEDED, ""
    except RunCancelled:
        status, error = JobStatus.CANCELLED, f"cancelled. {keep}"
    except BenchmarkDataError as exc:
        status, error = JobStatus.FAILED, f"{exc}. Fix the file, then Retry."
    except Exception as exc:  # a bug, a missing model, out of memory: the run must not stay "running"
        logger.exception("evaluation run %s crashed in the worker", run_id)
        status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}. {keep}"
    EvaluationRun.objects.filter(pk=run_id).update(status=status, error=error, finished_at=timezone.now(),
                                                   eta_seconds=None)
    run.refresh_from_db()
    return run


def _execute(run: EvaluationRun) -> None:
    units = run_plan(run)
    log = OutputLog(run.outputs_path)
    _store_skips(run, [unit for unit in units if unit.skip_reason])
    todo = [(unit, [e for e in unit.examples if (unit.benchmark.name, unit.language, e.id) not in log.done])
            for unit in units if not unit.skip_reason]
    total = sum(len(unit.examples) for unit, _ in todo)
    done = total - sum(len(pending) for _, pending in todo)
    tracker = Tracker(run_id=run.pk, total=total, done=done, done_at_start=done)
    tracker.beat()
    loaded = load_model(model_spec(run)) if any(pending for _, pending in todo) else None
    tracker.beat()
    for unit, pending in todo:
        if pending:
            _run_unit(run, unit, pending, loaded, log, tracker)
        _store_results(run, unit)
    tracker.beat()


def _run_unit(run: EvaluationRun, unit: Unit, pending: list[Example], loaded: LoadedModel, log: OutputLog,
              tracker: Tracker) -> None:
    prompts = [benchmark_prompt(loaded, unit.benchmark, example, max_new_tokens=run.max_new_tokens)
               for example in pending]
    if unit.benchmark.generates:
        def saved(indices: list[int], generations: list[Generation]) -> None:
            log.append(_generation_record(unit, pending[i], g) for i, g in zip(indices, generations, strict=True))
            tracker.advance(len(indices))

        generate(loaded, prompts, max_new_tokens=run.max_new_tokens, batch_size=run.batch_size, on_batch=saved,
                 throughput=tracker.throughput)
    else:
        def scored(indices: list[int], scores: list[list[float]]) -> None:
            log.append(_choice_record(unit, pending[i], s) for i, s in zip(indices, scores, strict=True))
            tracker.advance(len(indices))

        score_options(loaded, prompts, [example.options for example in pending], batch_size=run.batch_size,
                      on_batch=scored)


def _base_record(unit: Unit, example: Example) -> dict[str, Any]:
    return {"benchmark": unit.benchmark.name, "language": unit.language, "id": example.id, "input": example.input}


def _generation_record(unit: Unit, example: Example, generation: Generation) -> dict[str, Any]:
    return {
        **_base_record(unit, example), "reference": example.reference, "output": generation.text,
        "expected_language": example.expected_language,
        "off_target": off_target_mark(generation.text, example.expected_language),
        "new_tokens": generation.new_tokens, "truncated": generation.truncated_prompt,
    }


def _choice_record(unit: Unit, example: Example, scores: list[float]) -> dict[str, Any]:
    prediction = max(range(len(scores)), key=scores.__getitem__)
    return {
        **_base_record(unit, example), "options": list(example.options), "scores": scores,
        "prediction": prediction, "label": example.label, "correct": prediction == example.label,
    }


def _store_skips(run: EvaluationRun, units: list[Unit]) -> None:
    with transaction.atomic():
        for unit in units:
            EvaluationResult.objects.update_or_create(
                run=run, benchmark=unit.benchmark.name, language=unit.language, metric="",
                defaults={"skipped": True, "reason": unit.skip_reason[:500], "value": None, "n": 0},
            )


def _store_results(run: EvaluationRun, unit: Unit) -> None:
    """Score one language from the outputs file (only the examples this run plans: the file is the truth)."""
    wanted = {example.id for example in unit.examples}
    by_id = {str(record["id"]): record for record in read_records(run.outputs_path, benchmark=unit.benchmark.name,
                                                                  language=unit.language)}
    records = [record for example_id, record in by_id.items() if example_id in wanted]
    values = score(unit.benchmark, records, spm_model_path=spbleu_model_path(settings.SPBLEU_MODEL))
    with transaction.atomic():
        for value in values:
            counts = value.counts or {"on_target": None, "off_target": None, "not_measurable": None}
            EvaluationResult.objects.update_or_create(
                run=run, benchmark=unit.benchmark.name, language=unit.language, metric=value.metric,
                defaults={"value": value.value, "n": value.n, "skipped": False, "reason": value.note[:500],
                          "settings": value.settings, **counts},
            )
