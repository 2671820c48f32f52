"""`manage.py fetch_benchmarks`: download the public benchmark data sets, on a machine with internet.

Runs never download (evaluation/benchmarks/base.py); this command is the one step that does, when an admin asks.
It writes each data set in the layout its loader reads (evaluation/benchmarks/hub.py) and points the data set's
benchmark source at the folder, so the next runs use the full data instead of the shipped samples.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.languages import normalize_language_code
from crossfeed.errors import CrossfeedError
from evaluation.benchmarks.hub import RELEASES, HubUnavailable
from evaluation.services.sources import benchmark_data_fetch, benchmark_data_root


class Command(BaseCommand):
    help = ("Download the public benchmark data sets (FLORES+, XL-Sum, PAWS-X, XCOPA, Belebele) from the Hugging "
            "Face Hub into the layouts Crossfeed reads, and use them for the next evaluations. Needs internet, or "
            "--from a copy of one Hub repository.")

    def add_arguments(self, parser):
        parser.add_argument("datasets", nargs="*", metavar="DATASET",
                            help=f"which data sets (default: all): {', '.join(RELEASES)}")
        parser.add_argument("--languages", default="",
                            help="comma-separated language codes (default: every registry language the data set "
                                 "has); FLORES always adds English, its pivot")
        parser.add_argument("--dest", type=Path, default=None,
                            help="folder to write into, one sub-folder per data set (default: var/benchmarks)")
        parser.add_argument("--from", dest="source", type=Path, default=None,
                            help="read a copy of the data set's Hub repository from this folder instead of the Hub "
                                 "(made elsewhere with `hf download --repo-type dataset REPO --local-dir DIR`, "
                                 "adding `--revision refs/convert/parquet` for a loading-script repository such "
                                 "as XL-Sum's)")
        parser.add_argument("--no-register", action="store_true",
                            help="only write the files; do not point the benchmark sources at them")

    def handle(self, *args, **options):
        names = list(options["datasets"]) or list(RELEASES)
        languages = []
        for raw in (code.strip() for code in options["languages"].split(",") if code.strip()):
            code = normalize_language_code(raw)
            if code is None:
                raise CommandError(f"--languages: unknown language {raw!r}; see GET /api/v1/languages/")
            languages.append(code)
        dest = options["dest"] or benchmark_data_root()
        unknown = [name for name in names if name not in RELEASES]
        if unknown:
            raise CommandError(f"unknown data set {unknown[0]!r}; one of {', '.join(RELEASES)}")
        failures = []
        for name in names:  # one at a time: a gated FLORES+ must not keep Belebele from being fetched
            try:
                [report] = benchmark_data_fetch(
                    datasets=[name], languages=languages or None, dest=dest, source=options["source"],
                    register=not options["no_register"],
                    progress=(lambda line: self.stdout.write(f"  {line}")) if options["verbosity"] >= 2 else None,
                )
            except HubUnavailable as exc:
                failures.append(str(exc))
                if "cannot be reached" in str(exc):
                    break  # no network: every other data set would fail the same way
                continue
            except CrossfeedError as exc:
                raise CommandError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
            rows = sum(report.written.values())
            self.stdout.write(f"{report.dataset}: {len(report.written)} languages, {rows} rows in {report.folder}")
            if report.missing:
                self.stdout.write(f"  not available there: {', '.join(sorted(report.missing))}")
        if failures:
            raise CommandError(
                f"could not fetch the benchmark data: {'; '.join(failures)}. What was fetched before is kept, and "
                "the evaluations keep using the data they had (the shipped samples unless a benchmark source says "
                "otherwise). This command needs access to huggingface.co: run it on a machine with internet (with "
                "--dest FOLDER), copy the folder here and set it under Admin → Evaluation → Benchmark sources; or "
                "copy a download of the Hub repository here (`hf download --repo-type dataset REPO --local-dir DIR`) "
                "and run `manage.py fetch_benchmarks DATASET --from DIR`."
            )
