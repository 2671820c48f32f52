"""Where each benchmark's files are: an admin-set BenchmarkSource, else the sample set shipped with Crossfeed."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils import timezone

from crossfeed.errors import InvalidInput
from evaluation.benchmarks import Benchmark, all_benchmarks
from evaluation.models import BenchmarkSource


def source_names() -> list[str]:
    """Names a BenchmarkSource may have: a benchmark's name, or a dataset's (shared by its benchmarks)."""
    names = []
    for benchmark in all_benchmarks():
        names += [name for name in (benchmark.name, benchmark.dataset) if name not in names]
    return names


def benchmark_root(benchmark: Benchmark, *, samples: bool = False) -> Path:
    """The folder to read: a source named after the benchmark wins over one named after its dataset."""
    if not samples:
        configured = dict(BenchmarkSource.objects.filter(name__in=[benchmark.name, benchmark.dataset])
                          .values_list("name", "path"))
        path = configured.get(benchmark.name) or configured.get(benchmark.dataset)
        if path:
            return Path(path).expanduser()
    return benchmark.sample_root


def uses_sample_data(benchmark: Benchmark) -> bool:
    return benchmark_root(benchmark) == benchmark.sample_root


@transaction.atomic
def benchmark_source_set(*, name: str, path: str, notes: str = "") -> BenchmarkSource:
    """Point a benchmark (or a dataset) at a folder; the folder must exist on this machine."""
    if name not in source_names():
        raise InvalidInput(f"unknown benchmark or dataset {name!r}; one of {', '.join(source_names())}", field="name")
    folder = Path((path or "").strip()).expanduser()
    if not str(path or "").strip() or not folder.is_absolute():
        raise InvalidInput("an absolute path to the folder that holds the benchmark's files", field="path")
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder on this machine", field="path")
    source, _ = BenchmarkSource.objects.update_or_create(
        name=name, defaults={"path": str(folder), "notes": notes, "updated_at": timezone.now()}
    )
    return source
