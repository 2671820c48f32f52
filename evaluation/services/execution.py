"""Running an evaluation on a worker: claim it, load the model once, then score the examples not yet in the outputs
file in batches that span benchmarks and languages — first every option of every classification benchmark (one
log-likelihood pass), then every generation prompt (one greedy pass), each sorted by length across the whole run —
and store each language's results as soon as its last example is done.

Batching across benchmarks and languages matters because a batch costs about as much as its longest row: with
batches of 8 per language, the sample sets' 3–5 prompts per language made every generation batch a half-empty one
that ran its full max_new_tokens (25 batches of ≤ 5 prompts for 99 prompts; now 13 batches of 8).

Every batch appends its outputs to the run's JSONL (fsynced), moves the progress, beats the heart and looks for a
cancel request. A crash marks the run failed with the reason and keeps the file; Retry runs only what is missing
from it, and the results come from the file, so a run in three attempts scores exactly as a run in one.

Each attempt records where its time went (`EvaluationRun.timings`): loading the model, building prompts, generating,
scoring log-likelihoods, computing metrics, writing outputs and results; each phase excludes the phases nested in it
(the writes done from inside a generation batch count as writing, not generating).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    Prompt,
    ScoringStats,
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


PHASES = ("load_model", "prompts", "generate", "loglikelihood", "metrics", "write")


class PhaseTimer:
    """Wall seconds per phase of an attempt, each phase exclusive of the phases entered inside it: a phase entered
    while another runs pauses that one. Two perf_counter calls per entry, so it can wrap every batch."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.started = time.perf_counter()
        self._stack: list[str] = []
        self._since = self.started

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._since = now

    def report(self, **counts: Any) -> dict[str, Any]:
        """{"wall_seconds", "seconds": {phase: s}, "share": {phase: fraction of wall}, **counts}; "other" is the
        rest (database progress updates, reading the plan)."""
        wall = time.perf_counter() - self.started
        seconds = {name: round(value, 3) for name, value in self.seconds.items()}
        seconds["other"] = round(max(0.0, wall - sum(self.seconds.values())), 3)
        share = {name: round(value / wall, 4) if wall > 0 else 0.0 for name, value in seconds.items()}
        return {"wall_seconds": round(wall, 3), "seconds": seconds, "share": share, **counts}


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
    attempt = Attempt()
    try:
        _execute(run, attempt)
        status, error = JobStatus.SUCCEEDED, ""
    except RunCancelled:
        status, error = JobStatus.CANCELLED, f"cancelled. {keep}"
    except BenchmarkDataError as exc:
        status, error = JobStatus.FAILED, f"{exc}. Fix the file, then Retry."
    except Exception as exc:  # a bug, a missing model, out of memory: the run must not stay "running"
        logger.exception("evaluation run %s crashed in the worker", run_id)
        status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}. {keep}"
    EvaluationRun.objects.filter(pk=run_id).update(status=status, error=error, finished_at=timezone.now(),
                                                   eta_seconds=None, timings=attempt.report())
    run.refresh_from_db()
    return run


@dataclass
class Attempt:
    """Where one attempt's time went, and how much work it did (EvaluationRun.timings)."""

    timer: PhaseTimer = field(default_factory=PhaseTimer)
    models_loaded: int = 0
    generation: Throughput = field(default_factory=Throughput)
    scoring: ScoringStats = field(default_factory=ScoringStats)
    loaded: LoadedModel | None = None

    def report(self) -> dict[str, Any]:
        cache = self.loaded.token_cache if self.loaded is not None else None
        return self.timer.report(
            models_loaded=self.models_loaded,
            generation={"prompts": self.generation.prompts, "batches": len(self.generation.batches),
                        "new_tokens": self.generation.new_tokens},
            loglikelihood={"requests": self.scoring.requests, "rows": self.scoring.rows,
                           "batches": self.scoring.batches, "tokens": self.scoring.tokens},
            token_cache={"hits": cache.hits, "misses": cache.misses} if cache is not None else None,
        )


@dataclass
class Pending:
    """An example still to run, with the unit it belongs to and its prompt."""

    unit: Unit
    example: Example
    prompt: Prompt


def _execute(run: EvaluationRun, attempt: Attempt) -> None:
    timer = attempt.timer
    units = run_plan(run)
    with timer.phase("write"):
        log = OutputLog(run.outputs_path)
        _store_skips(run, [unit for unit in units if unit.skip_reason])
    todo = [(unit, [e for e in unit.examples if (unit.benchmark.name, unit.language, e.id) not in log.done])
            for unit in units if not unit.skip_reason]
    total = sum(len(unit.examples) for unit, _ in todo)
    done = total - sum(len(pending) for _, pending in todo)
    tracker = Tracker(run_id=run.pk, total=total, done=done, done_at_start=done, throughput=attempt.generation)
    tracker.beat()
    for unit, pending in todo:
        if not pending:  # finished by an earlier attempt: its results come from the file
            _store_results(run, unit, timer)
    if not any(pending for _, pending in todo):
        tracker.beat()
        return
    with timer.phase("load_model"):
        loaded = attempt.loaded = load_model(model_spec(run))
        attempt.models_loaded += 1
    tracker.beat()
    work = []
    for unit, pending in todo:
        with timer.phase("prompts"):
            work += [Pending(unit, example, benchmark_prompt(loaded, unit.benchmark, example,
                                                             max_new_tokens=run.max_new_tokens))
                     for example in pending]
        tracker.advance(0)  # fitting every XL-Sum article of a full data set to the context takes a while
    # A unit's results are stored when its last pending example is written.
    left = {id(unit): len(pending) for unit, pending in todo}

    def finished(items: list[Pending]) -> None:
        for item in items:
            left[id(item.unit)] -= 1
            if left[id(item.unit)] == 0:
                _store_results(run, item.unit, timer)
        tracker.advance(len(items))

    # Classification first: one log-likelihood pass is quick, so those results show while generation runs.
    choices = [item for item in work if not item.unit.benchmark.generates]
    if choices:
        def scored(indices: list[int], scores: list[list[float]]) -> None:
            with timer.phase("write"):
                log.append(_choice_record(choices[i].unit, choices[i].example, s)
                           for i, s in zip(indices, scores, strict=True))
            finished([choices[i] for i in indices])

        with timer.phase("loglikelihood"):
            score_options(loaded, [item.prompt for item in choices], [item.example.options for item in choices],
                          batch_size=run.batch_size, on_batch=scored, stats=attempt.scoring)
    answers = [item for item in work if item.unit.benchmark.generates]
    if answers:
        def saved(indices: list[int], generations: list[Generation]) -> None:
            with timer.phase("metrics"):  # the off-target mark saved with each output
                records = [_generation_record(answers[i].unit, answers[i].example, g)
                           for i, g in zip(indices, generations, strict=True)]
            with timer.phase("write"):
                log.append(records)
            finished([answers[i] for i in indices])

        with timer.phase("generate"):
            generate(loaded, [item.prompt for item in answers], max_new_tokens=run.max_new_tokens,
                     batch_size=run.batch_size, on_batch=saved, throughput=attempt.generation)
    tracker.beat()


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


def _store_results(run: EvaluationRun, unit: Unit, timer: PhaseTimer) -> None:
    """Score one language from the outputs file (only the examples this run plans: the file is the truth)."""
    with timer.phase("metrics"):
        wanted = {example.id for example in unit.examples}
        by_id = {str(record["id"]): record
                 for record in read_records(run.outputs_path, benchmark=unit.benchmark.name, language=unit.language)}
        records = [record for example_id, record in by_id.items() if example_id in wanted]
        values = score(unit.benchmark, records, spm_model_path=spbleu_model_path(settings.SPBLEU_MODEL))
    with timer.phase("write"), transaction.atomic():
        for value in values:
            counts = value.counts or {"on_target": None, "off_target": None, "not_measurable": None}
            EvaluationResult.objects.update_or_create(
                run=run, benchmark=unit.benchmark.name, language=unit.language, metric=value.metric,
                defaults={"value": value.value, "n": value.n, "skipped": False, "reason": value.note[:500],
                          "settings": value.settings, **counts},
            )
