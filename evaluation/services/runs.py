"""Creating, retrying, cancelling evaluation runs; every input and every benchmark file is checked first.

A run is created only when each benchmark's files load for each language it will evaluate: a missing or malformed
file is refused with its path and line, before anything is queued, so a run never fails an hour in on a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.languages import normalize_language_code
from annotation.models import JobStatus
from crossfeed.errors import Conflict, InvalidInput
from evaluation.benchmarks import Benchmark, BenchmarkDataError, Example, all_benchmarks, get_benchmark
from evaluation.inference import ModelSpec
from evaluation.models import EvaluationRun
from evaluation.services.sources import benchmark_root
from training.models import BaseModel, ModelVersion, TrainingRun

# Each batch beats the heart; a batch of 8 × 512 tokens of a 7B model takes seconds on a GPU, minutes on a CPU.
STALE_AFTER = timedelta(minutes=10)
MAX_LIMIT = 100_000
MAX_NEW_TOKENS = 8192
MAX_BATCH_SIZE = 512
DEFAULT_MAX_NEW_TOKENS = 512  # the paper's setting


@dataclass
class Unit:
    """One benchmark in one language: its examples, or why it is skipped."""

    benchmark: Benchmark
    language: str
    examples: list[Example] = field(default_factory=list)
    skip_reason: str = ""


def runs_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "evaluation"


def adapter_chain(version: ModelVersion) -> list[ModelVersion]:
    """The version and its ancestors, oldest first: the order their adapters are merged (SFT before DPO)."""
    chain: list[ModelVersion] = []
    seen: set[int] = set()
    current: ModelVersion | None = version
    while current is not None:
        if current.pk in seen:
            raise InvalidInput(f"version {version.name} has a cycle in its parents", field="model_version")
        seen.add(current.pk)
        chain.append(current)
        current = current.parent
    return chain[::-1]


def model_spec(run: EvaluationRun) -> ModelSpec:
    return spec_for(base_model=run.base_model, model_version=run.model_version if run.model_version_id else None)


def spec_for(*, base_model: BaseModel, model_version: ModelVersion | None) -> ModelSpec:
    """How to load a base model, or a version of it (its adapter chain merged in order); generation uses it too."""
    adapters = tuple(v.adapter_path for v in adapter_chain(model_version)) if model_version is not None else ()
    # A trained version is loaded with the template its training recorded (manifest.json), even if the base
    # model's template settings changed since; a bare base model with its settings, by the rule training applies.
    recorded = (model_version.manifest or {}).get("chat_template") if model_version is not None else None
    override = recorded["text"] if isinstance(recorded, dict) and recorded.get("text") else base_model.chat_template
    return ModelSpec(base_path=base_model.path, adapters=adapters, chat_template=override,
                     chat_template_name=base_model.chat_template_name)


def plan_units(benchmarks: list[Benchmark], languages: list[str], sources: dict[str, str],
               limit: int | None) -> list[Unit]:
    """Load every example the run will see; raises BenchmarkDataError naming the file and line."""
    units = []
    for benchmark in benchmarks:
        root = Path(sources[benchmark.name])
        if not root.is_dir():
            raise BenchmarkDataError(root, f"the data folder of {benchmark.name} does not exist (set it in the "
                                           "admin under Benchmark sources)")
        available = benchmark.languages(root)
        for language in languages or available:
            if language not in available:
                units.append(Unit(benchmark, language, skip_reason=benchmark.missing_reason(language)))
                continue
            examples = benchmark.load(root, language, limit=limit)
            reason = "" if examples else f"the {language} file of {benchmark.name} holds no examples"
            units.append(Unit(benchmark, language, examples, skip_reason=reason))
    return units


def run_plan(run: EvaluationRun) -> list[Unit]:
    benchmarks = [get_benchmark(name) for name in run.benchmarks]
    missing = [name for name, benchmark in zip(run.benchmarks, benchmarks, strict=True) if benchmark is None]
    if missing:
        raise ValueError(f"the benchmark {missing[0]!r} is no longer in this version of Crossfeed")
    return plan_units(benchmarks, run.languages, run.sources, run.limit)


def _whole_number(value: Any, field_name: str, low: int, high: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"a whole number from {low} to {high}", field=field_name)
    return value


def _check_benchmarks(names: Any) -> list[Benchmark]:
    known = ", ".join(b.name for b in all_benchmarks())
    if not isinstance(names, list | tuple) or not names or not all(isinstance(name, str) for name in names):
        raise InvalidInput(f"a non-empty list of benchmark names: {known}", field="benchmarks")
    unknown = [name for name in names if get_benchmark(name) is None]
    if unknown:
        raise InvalidInput(f"unknown benchmark {unknown[0]!r}; known: {known}", field="benchmarks")
    return [get_benchmark(name) for name in dict.fromkeys(names)]


def _check_languages(codes: Any) -> list[str]:
    if codes is None:
        return []
    if not isinstance(codes, list | tuple) or not all(isinstance(code, str) for code in codes):
        raise InvalidInput("a list of language codes such as sw, ta, zh-Hans", field="languages")
    languages = []
    for code in codes:
        canonical = normalize_language_code(code)
        if canonical is None:
            raise InvalidInput(f"unknown language {code[:40]!r}; see GET /api/v1/languages/", field="languages")
        if canonical not in languages:
            languages.append(canonical)
    return languages


def _check_model(model_version: ModelVersion | None, base_model: BaseModel | None) -> BaseModel:
    if (model_version is None) == (base_model is None):
        raise InvalidInput("give either a model version or a base model (evaluated without adapters)",
                           field="model_version")
    if model_version is None:
        return base_model
    for version in adapter_chain(model_version):
        if not (Path(version.adapter_path) / "adapter_config.json").is_file():
            raise InvalidInput(f"the adapter of {version.name} is missing: no adapter_config.json in "
                               f"{version.adapter_path}", field="model_version")
    return model_version.base_model


@transaction.atomic
def evaluation_run_create(
    *,
    benchmarks: list[str],
    model_version: ModelVersion | None = None,
    base_model: BaseModel | None = None,
    languages: list[str] | None = None,
    limit: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 8,
    created_by=None,
    samples: bool = False,
    trigger: str = EvaluationRun.Trigger.MANUAL,
    training_run: TrainingRun | None = None,
    enqueue: bool = True,
    allow_empty: bool = False,
) -> EvaluationRun:
    """Validate everything, load every benchmark file once (so a bad one is refused now), then queue the run.

    `samples=True` reads the shipped sample sets whatever sources the admin configured. The chosen languages that
    no chosen benchmark has data for are stored on the run (`languages_without_data`). A run with nothing to
    evaluate is refused, unless `allow_empty` (the evaluation after training: it must still say which of the trained
    languages have no data).
    """
    chosen = _check_benchmarks(benchmarks)
    codes = _check_languages(languages)
    limit = _whole_number(limit, "limit", 1, MAX_LIMIT, optional=True)
    max_new_tokens = _whole_number(max_new_tokens, "max_new_tokens", 1, MAX_NEW_TOKENS)
    batch_size = _whole_number(batch_size, "batch_size", 1, MAX_BATCH_SIZE)
    base = _check_model(model_version, base_model)
    sources = {benchmark.name: str(benchmark_root(benchmark, samples=samples)) for benchmark in chosen}
    try:
        units = plan_units(chosen, codes, sources, limit)
    except BenchmarkDataError as exc:
        raise InvalidInput(str(exc), field="benchmarks") from None
    total = sum(len(unit.examples) for unit in units)
    if total == 0 and not allow_empty:
        raise InvalidInput("none of the chosen benchmarks has data in the chosen languages: nothing to evaluate",
                           field="languages")
    with_data = {unit.language for unit in units if unit.examples}
    run = EvaluationRun.objects.create(
        model_version=model_version, base_model=base, benchmarks=[b.name for b in chosen], languages=codes,
        languages_without_data=[code for code in codes if code not in with_data], limit=limit,
        max_new_tokens=max_new_tokens, batch_size=batch_size, sources=sources, trigger=trigger,
        training_run=training_run, progress_total=total,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    run.outputs_path = str(runs_root() / f"run-{run.pk}" / "outputs.jsonl")
    run.save(update_fields=["outputs_path"])
    if enqueue:
        evaluation_run_enqueue(run)
    return run


def evaluation_run_enqueue(run: EvaluationRun) -> None:
    from evaluation.tasks import run_evaluation

    # After commit: a worker must never pick up a run whose row it cannot see yet.
    transaction.on_commit(lambda: run_evaluation.enqueue(run.pk))


@transaction.atomic
def evaluation_run_retry(*, run: EvaluationRun) -> EvaluationRun:
    """Queue a failed or cancelled run again; it continues after the outputs already saved."""
    updated = EvaluationRun.objects.filter(pk=run.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED, error="", cancel_requested=False, finished_at=None, eta_seconds=None
    )
    if not updated:
        raise Conflict(f"evaluation {run.pk} is {run.get_status_display()}: only failed or cancelled runs can be "
                       "retried")
    run.refresh_from_db()
    evaluation_run_enqueue(run)
    return run


@transaction.atomic
def evaluation_run_cancel(*, run: EvaluationRun) -> EvaluationRun:
    """A queued run is cancelled at once; a running one stops after its current batch."""
    now = timezone.now()
    if not EvaluationRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=now, error="cancelled before it started"
    ) and not EvaluationRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True):
        raise Conflict(f"evaluation {run.pk} is {run.get_status_display()}: there is nothing to cancel")
    run.refresh_from_db()
    return run


def evaluation_runs_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Runs whose worker stopped sending heartbeats are failed, with the reason; Retry continues them."""
    now = now or timezone.now()
    count = 0
    for run in EvaluationRun.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after):
        reason = (f"the worker {run.worker} stopped responding (no heartbeat since "
                  f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); the outputs so far are kept and Retry continues after "
                  "them")
        count += EvaluationRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=reason, finished_at=now, eta_seconds=None
        )
    return count
