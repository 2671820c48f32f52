"""The benchmark registry: every Benchmark class Crossfeed knows, by name.

Adding a benchmark: subclass `Benchmark` (base.py) with a name, task, metrics, a loader for its public file
layout and a prompt in evaluation/prompts.py, add it to the tuple below, ship a few sample items of your own in
evaluation/samples/<dataset>/, and, if its data set is public, its release in hub.py (what `fetch_benchmarks`
downloads and the coverage page lists).
"""

from __future__ import annotations

from .base import SAMPLES_ROOT, TASKS, Benchmark, BenchmarkDataError, Example, fit_messages, language_name
from .belebele import Belebele
from .classification import PawsX, PawsXSeed, XCopa, XCopaSeed
from .flores import FloresFromEnglish, FloresIntoEnglish
from .open_ended import OpenEnded
from .xlsum import XLSum

_REGISTRY: dict[str, Benchmark] = {}


def register(cls: type[Benchmark]) -> type[Benchmark]:
    if cls.task not in TASKS:
        raise ValueError(f"{cls.__name__}.task is {cls.task!r}; expected one of {', '.join(TASKS)}")
    if cls.primary_metric not in cls.metrics:
        raise ValueError(f"{cls.__name__}.primary_metric {cls.primary_metric!r} is not among its metrics")
    _REGISTRY[cls.name] = cls()
    return cls


for _benchmark in (FloresFromEnglish, FloresIntoEnglish, XLSum, PawsX, XCopa, Belebele, OpenEnded, PawsXSeed,
                   XCopaSeed):
    register(_benchmark)


def all_benchmarks() -> list[Benchmark]:
    return list(_REGISTRY.values())


def get_benchmark(name: str) -> Benchmark | None:
    return _REGISTRY.get(name)


def benchmark_names() -> list[str]:
    return list(_REGISTRY)


__all__ = [
    "SAMPLES_ROOT",
    "TASKS",
    "Benchmark",
    "BenchmarkDataError",
    "Example",
    "all_benchmarks",
    "benchmark_names",
    "fit_messages",
    "get_benchmark",
    "language_name",
    "register",
]
