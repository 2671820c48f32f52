"""Writes for the evaluation app: runs (create, execute, retry, cancel), benchmark sources, automatic evaluation
after training, and win-rate campaigns."""

from evaluation.services.automatic import evaluation_after_training
from evaluation.services.execution import evaluation_run_execute
from evaluation.services.runs import (
    evaluation_run_cancel,
    evaluation_run_create,
    evaluation_run_retry,
    evaluation_runs_fail_stale,
)
from evaluation.services.sources import benchmark_source_set

__all__ = [
    "benchmark_source_set",
    "evaluation_after_training",
    "evaluation_run_cancel",
    "evaluation_run_create",
    "evaluation_run_execute",
    "evaluation_run_retry",
    "evaluation_runs_fail_stale",
]
