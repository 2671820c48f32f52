"""Where each benchmark's files are: an admin-set BenchmarkSource, else the sample set shipped with Crossfeed;
fetching the public data sets into a folder (`manage.py fetch_benchmarks`); and which benchmark can evaluate which
registry language (the coverage page)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.languages import LanguageSpec, all_languages
from crossfeed.errors import InvalidInput
from evaluation.benchmarks import Benchmark, all_benchmarks
from evaluation.benchmarks.hub import RELEASES, FetchReport, fetch_release
from evaluation.models import BenchmarkSource

# What the coverage page says a benchmark has for a language, best first.
FULL, SAMPLE, SUPPORTED, NONE = "full", "sample", "supported", "none"


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


def benchmark_data_root() -> Path:
    """Where `fetch_benchmarks` writes the public data sets unless told otherwise: var/benchmarks/<dataset>/."""
    return Path(settings.VAR_DIR) / "benchmarks"


def benchmark_data_fetch(*, datasets: list[str], languages: list[str] | None = None, dest: Path | None = None,
                         source: Path | None = None, register: bool = True,
                         progress: Callable[[str], None] | None = None) -> list[FetchReport]:
    """Download the public data sets (or read `source`, a copy of one Hub repository) into `dest` in the layouts
    the loaders read, and point each data set's BenchmarkSource at its folder when something was written.

    Raises InvalidInput for an unknown data set, and HubUnavailable (evaluation.benchmarks.hub) when the Hub or
    the copy cannot be read; files written before that stay (each is complete), nothing is registered for the
    data set that failed.
    """
    unknown = [name for name in datasets if name not in RELEASES]
    if unknown:
        raise InvalidInput(f"unknown data set {unknown[0]!r}; one of {', '.join(RELEASES)}", field="dataset")
    if source is not None and len(datasets) != 1:
        raise InvalidInput("a local copy holds one Hub repository: name its one data set", field="dataset")
    root = (dest or benchmark_data_root()).expanduser().resolve()
    reports = []
    for name in datasets:
        report = fetch_release(RELEASES[name], root, languages=languages, source=source, progress=progress)
        if register and report.written:
            origin = source or RELEASES[name].hub_repo
            benchmark_source_set(name=name, path=str(report.folder),
                                 notes=f"fetched from {origin} on {timezone.now():%Y-%m-%d}")
        reports.append(report)
    return reports


@dataclass(frozen=True)
class LanguageCoverage:
    """One registry language: per benchmark (in registry order) FULL, SAMPLE, SUPPORTED or NONE."""

    language: LanguageSpec
    cells: tuple[str, ...]

    @property
    def evaluable(self) -> bool:
        return any(cell in (FULL, SAMPLE) for cell in self.cells)


def benchmark_coverage() -> tuple[list[Benchmark], list[LanguageCoverage]]:
    """Which benchmark can evaluate which registry language, as a run reads the data: FULL data in the configured
    folder, else the shipped SAMPLE (only where no folder is configured: a configured folder replaces the samples,
    as in runs), SUPPORTED by the public release but not here, or NONE. Reads folder listings only, no file."""
    benchmarks = all_benchmarks()
    present = []
    for benchmark in benchmarks:
        root = benchmark_root(benchmark)
        configured = root != benchmark.sample_root
        full = set(benchmark.languages(root)) if configured and root.is_dir() else set()
        sample = set() if configured else set(benchmark.languages(benchmark.sample_root))
        present.append((full, sample, set(benchmark.supported_languages() or ())))
    rows = []
    for spec in all_languages():
        cells = []
        for full, sample, supported in present:
            cells.append(FULL if spec.code in full else SAMPLE if spec.code in sample
                         else SUPPORTED if spec.code in supported else NONE)
        rows.append(LanguageCoverage(spec, tuple(cells)))
    return benchmarks, rows
