"""Evaluation queued automatically when a training run succeeds: the new versions and what they were trained from.

Both sides of the comparison run on the shipped sample sets with the same settings, so the comparison page can put
them side by side at once. A model already evaluated that way (queued, running or succeeded) is not run again.
"""

from __future__ import annotations

import logging

from django.db import transaction

from annotation.models import JobStatus
from evaluation.benchmarks import benchmark_names, get_benchmark
from evaluation.models import EvaluationRun
from evaluation.services.runs import DEFAULT_MAX_NEW_TOKENS, evaluation_run_create
from evaluation.services.sources import benchmark_root
from training.models import BaseModel, ModelVersion, TrainingRun

logger = logging.getLogger(__name__)


def _sample_sources(names: list[str]) -> dict[str, str]:
    return {name: str(benchmark_root(get_benchmark(name), samples=True)) for name in names}


def _already_evaluated(subject: ModelVersion | BaseModel, names: list[str],
                       max_new_tokens: int) -> EvaluationRun | None:
    runs = EvaluationRun.objects.filter(
        status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED], limit=None,
        max_new_tokens=max_new_tokens, languages=[],
    )
    if isinstance(subject, ModelVersion):
        runs = runs.filter(model_version=subject)
    else:
        runs = runs.filter(model_version=None, base_model=subject)
    sources = _sample_sources(names)
    return next((run for run in runs if run.benchmarks == names and run.sources == sources), None)


def _subjects(run: TrainingRun) -> list[ModelVersion | BaseModel]:
    subjects: list[ModelVersion | BaseModel] = []
    for version in run.versions.select_related("parent", "base_model").order_by("created_at", "id"):
        for subject in (version, version.parent or version.base_model):
            if subject not in subjects:
                subjects.append(subject)
    return subjects


def evaluation_after_training(run: TrainingRun, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                              enqueue: bool = True) -> list[EvaluationRun]:
    """Queue sample-set evaluations of each version the run registered and of its parent (or bare base model).

    Returns the runs that cover them, new or existing. Never raises: training has succeeded whatever happens
    here, so a problem (an adapter folder gone missing, say) is logged and that model is left out.
    """
    names = benchmark_names()
    covered = []
    for subject in _subjects(run):
        try:
            existing = _already_evaluated(subject, names, max_new_tokens)
            if existing is not None:
                covered.append(existing)
                continue
            with transaction.atomic():
                covered.append(evaluation_run_create(
                    benchmarks=names, samples=True, max_new_tokens=max_new_tokens, created_by=run.created_by,
                    trigger=EvaluationRun.Trigger.AFTER_TRAINING, training_run=run, enqueue=enqueue,
                    **({"model_version": subject} if isinstance(subject, ModelVersion) else {"base_model": subject}),
                ))
        except Exception:
            logger.exception("could not queue the evaluation of %s after training run %s", subject, run.pk)
    return covered
