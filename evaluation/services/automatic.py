"""Evaluation queued automatically when a training run succeeds: the new versions and what they were trained from,
on the languages the run was trained on.

The languages are those of the run's exports: the prompt and the response language of every language pair in
them (a Hindi→Urdu export is evaluated on Hindi and Urdu), and each benchmark reads its configured folder (the full
data set, `manage.py fetch_benchmarks`) or, where none is set, the shipped sample set. A run trained on an uploaded
file names no languages: it is evaluated, as before, on every language of the sample sets (every language of the
full data sets would be hours of generation nobody asked for). The trained languages that no
benchmark has data for are stored on the evaluation run (`languages_without_data`) and shown on its page; such a
run is queued even when none of the languages has data, so that the gap is visible instead of a silent "no change".

Both sides of the comparison run with the same benchmarks, sources, languages and settings, so the comparison page
can put them side by side at once. A model already evaluated that way (queued, running or succeeded) is not run
again.
"""

from __future__ import annotations

import logging

from django.db import transaction

from annotation.languages import normalize_language_code
from annotation.models import Export, JobStatus
from evaluation.benchmarks import benchmark_names, get_benchmark
from evaluation.models import EvaluationRun
from evaluation.services.runs import DEFAULT_MAX_NEW_TOKENS, evaluation_run_create
from evaluation.services.sources import benchmark_root
from training.models import BaseModel, ModelVersion, TrainingRun

logger = logging.getLogger(__name__)


def trained_languages(run: TrainingRun) -> list[str]:
    """The prompt and response languages of the language pairs in the run's exports, sorted; [] when it has none
    (an uploaded SFT file)."""
    exports: list[Export] = [export for export in (run.export, run.sft_export) if export is not None]
    codes = set()
    for export in exports:
        for pair in export.language_pairs or []:
            for key in ("prompt_language", "response_language"):
                code = normalize_language_code(str(pair.get(key) or ""))
                if code:
                    codes.add(code)
    return sorted(codes)


def _sources(names: list[str], *, samples: bool) -> dict[str, str]:
    return {name: str(benchmark_root(get_benchmark(name), samples=samples)) for name in names}


def _already_evaluated(subject: ModelVersion | BaseModel, names: list[str], languages: list[str],
                       max_new_tokens: int) -> EvaluationRun | None:
    runs = EvaluationRun.objects.filter(
        status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED], limit=None,
        max_new_tokens=max_new_tokens,
    )
    if isinstance(subject, ModelVersion):
        runs = runs.filter(model_version=subject)
    else:
        runs = runs.filter(model_version=None, base_model=subject)
    sources = _sources(names, samples=not languages)
    return next((run for run in runs
                 if run.benchmarks == names and run.sources == sources and run.languages == languages), None)


def _subjects(run: TrainingRun) -> list[ModelVersion | BaseModel]:
    subjects: list[ModelVersion | BaseModel] = []
    for version in run.versions.select_related("parent", "base_model").order_by("created_at", "id"):
        for subject in (version, version.parent or version.base_model):
            if subject not in subjects:
                subjects.append(subject)
    return subjects


def evaluation_after_training(run: TrainingRun, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                              enqueue: bool = True) -> list[EvaluationRun]:
    """Queue evaluations of each version the run registered and of its parent (or bare base model), on the
    languages of the run's exports, with every benchmark.

    Returns the runs that cover them, new or existing. Never raises: training has succeeded whatever happens
    here, so a problem (an adapter folder gone missing, say) is logged and that model is left out.
    """
    names = benchmark_names()
    languages = trained_languages(run)
    covered = []
    for subject in _subjects(run):
        try:
            existing = _already_evaluated(subject, names, languages, max_new_tokens)
            if existing is not None:
                covered.append(existing)
                continue
            with transaction.atomic():
                covered.append(evaluation_run_create(
                    benchmarks=names, languages=languages, samples=not languages, max_new_tokens=max_new_tokens,
                    created_by=run.created_by, trigger=EvaluationRun.Trigger.AFTER_TRAINING, training_run=run,
                    enqueue=enqueue, allow_empty=bool(languages),
                    **({"model_version": subject} if isinstance(subject, ModelVersion) else {"base_model": subject}),
                ))
        except Exception:
            logger.exception("could not queue the evaluation of %s after training run %s", subject, run.pk)
    return covered
