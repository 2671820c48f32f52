"""What every benchmark is: a name, a task, its metrics, the languages its files hold, and a loader.

A benchmark reads LOCAL files in the layout its public release uses; nothing is downloaded at run time
(`manage.py fetch_benchmarks` writes the public data sets in these layouts, on a machine with internet). Loaders read
a whole file and check every line, so a bad line anywhere is reported (file and line) when the run is created,
before any model is loaded, and they never cut a text: a document too long for the model's context is shortened
by `fit_messages`, from the side the task's reference tools cut. Django-free on purpose: the bench scripts and the
tests use them without settings.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from annotation.languages import get_language, normalize_language_code

from .hub import RELEASES, release_languages

SAMPLES_ROOT = Path(__file__).resolve().parent.parent / "samples"
TASKS = ("translation", "summarization", "classification", "open_ended")
# The seed's evaluation code samples FLORES sentences with `datasets` and this seed; we use it wherever a limit
# picks a subset at random (see `seeded_sample`).
SAMPLE_SEED = 42


class BenchmarkDataError(Exception):
    """A benchmark file is missing or malformed: says which file, which line, and what was expected."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path} line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Example:
    """One test case. `id` is stable across runs of the same files: a retry skips ids already in the outputs."""

    id: str
    language: str  # the language the result is reported under
    input: str  # what a person reading the outputs needs to see (source sentence, article, instruction)
    expected_language: str  # the language the model's output should be in (off-target check)
    reference: str | None = None  # reference output (translation, summary)
    options: tuple[str, ...] = ()  # candidate answers of a classification task
    label: int | None = None  # index of the correct option
    fields: dict[str, str] = field(default_factory=dict)  # what the prompt template needs


class Benchmark:
    """Subclasses set the class attributes and implement `languages`, `load` and `messages`."""

    name: ClassVar[str]
    title: ClassVar[str]
    task: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    layout: ClassVar[str]  # one line for people: which files, where
    dataset: ClassVar[str]  # the release the files come from; benchmarks reading the same files share it
    # Examples per language when a run sets no limit: the protocol of the paper's evaluation code (FLORES: 200
    # sentences per direction; XL-Sum: the first 250 articles). None: all of them.
    default_limit: ClassVar[int | None] = None
    # The Example attribute holding a document that may be shortened to fit the model's context (XL-Sum's
    # article), cut from its end as the reference models of XL-Sum read it; None: nothing may be cut.
    document_field: ClassVar[str | None] = None

    @property
    def sample_root(self) -> Path:
        return SAMPLES_ROOT / self.dataset

    @property
    def generates(self) -> bool:
        return self.task != "classification"

    def languages(self, root: Path) -> list[str]:
        """Our codes of the languages whose files are present under root (not parsed yet), sorted."""
        raise NotImplementedError

    def supported_languages(self) -> list[str] | None:
        """Registry codes the public release covers, sorted (what `fetch_benchmarks` can download for this
        benchmark, hub.py); None when the data set has no public release here and any language works with files
        of your own (open-ended instructions)."""
        return release_languages(self.dataset)

    @property
    def hub_repo(self) -> str:
        """Where the public data set is published (a Hugging Face Hub data set id); "" when there is none."""
        release = RELEASES.get(self.dataset)
        return release.hub_repo if release else ""

    def limit_for(self, limit: int | None) -> int | None:
        """The number of examples a run takes per language: its own limit, else the benchmark's protocol."""
        return self.default_limit if limit is None else limit

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        """Every example of one language (or `limit` of them); raises BenchmarkDataError naming file and line."""
        raise NotImplementedError

    def messages(self, example: Example) -> list[dict[str, str]]:
        """The chat messages of the zero-shot prompt (evaluation/prompts.py)."""
        raise NotImplementedError

    def missing_reason(self, language: str) -> str:
        """Why a language is skipped when the data has no file for it."""
        return f"{self.name} has no {language} data"

    def describe(self, root: Path) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "task": self.task, "metrics": list(self.metrics),
                "languages": self.languages(root) if root.is_dir() else [], "layout": self.layout,
                "dataset": self.dataset, "hub_repo": self.hub_repo, "default_limit": self.default_limit,
                "supported_languages": self.supported_languages()}


def fit_messages(benchmark: Benchmark, example: Example,
                 fits: Callable[[list[dict[str, str]]], bool]) -> tuple[list[dict[str, str]], bool]:
    """The example's prompt messages, with its document shortened from its end until `fits(messages)` holds.

    Returns (messages, shortened). The instruction, the other fields and the opening of the document are kept
    whole; only the document's tail goes, as XL-Sum's own models read an article (its first 512 tokens). A
    benchmark without a document, or a prompt that does not fit even with an empty document, is returned as it
    is: the caller then truncates the prompt itself (and marks the output). `fits` is asked O(log n) times.
    """
    messages = benchmark.messages(example)
    attribute = benchmark.document_field
    if attribute is None or fits(messages):
        return messages, False
    document = getattr(example, attribute)

    def cut(keep: int) -> list[dict[str, str]]:
        return benchmark.messages(dataclasses.replace(example, **{attribute: document[:keep].rstrip()}))

    if not fits(cut(0)):
        return messages, False
    low, high = 0, len(document)  # fits(cut(low)) holds, fits(cut(high)) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(cut(middle)) else (low, middle)
    return cut(low), True


def language_name(code: str) -> str:
    spec = get_language(code)
    return spec.name if spec else code


def canonical(raw: str) -> str | None:
    """Our registry code for a file's language name or code; None when the registry does not have it."""
    return normalize_language_code(raw)


def first(items: list[Example], limit: int | None) -> list[Example]:
    return items if limit is None else items[:limit]


def seeded_sample(count: int, limit: int | None) -> list[int]:
    """Indices 0..count-1, or the `limit` of them that the seed's evaluation code picks, in file order.

    The seed (xLLMs-100, inference/MT/inference_mt.py) reads the devtest files line by line into a
    `datasets.Dataset` and takes `.shuffle(seed=42).select(range(200))`. `Dataset.shuffle(seed)` is the permutation
    `numpy.random.default_rng(seed).permutation(len(dataset))`, and `select(range(k))` its first k entries; we
    compute the same without loading `datasets` (tests/evaluation/test_benchmark_data.py checks it against
    `datasets` itself on a dataset of the devtest's 1,012 rows). The order of the examples does not change a
    corpus score, so they are returned in file order, which reads better in the outputs.
    """
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(int(index) for index in np.random.default_rng(SAMPLE_SEED).permutation(count)[:limit])


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BenchmarkDataError(path, f"file not found; expected {what}")
    return path


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline) for every line; a file that is not UTF-8 is reported by line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BenchmarkDataError(path, f"not valid UTF-8 (byte {exc.start + 1} of the line)",
                                         line=number) from None
            yield number, text.rstrip("\r\n")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; anything but a JSON object is an error with its line."""
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchmarkDataError(path, f"not valid JSON: {exc.msg} (column {exc.colno})", line=number) from None
        if not isinstance(value, dict):
            raise BenchmarkDataError(path, "expected a JSON object", line=number)
        yield number, value


def text_field(path: Path, line: int, value: dict[str, Any], key: str, *, required: bool = True) -> str:
    """A non-empty string field of a JSONL object, or a clear error naming the field."""
    text = value.get(key)
    if text is None and not required:
        return ""
    if not isinstance(text, str) or not text.strip():
        raise BenchmarkDataError(path, f'"{key}" must be a non-empty string', line=line)
    return text.strip()


def label_field(path: Path, line: int, raw: Any, allowed: tuple[int, ...] = (0, 1)) -> int:
    try:
        label = int(raw)
    except (TypeError, ValueError):
        label = None
    if label not in allowed or isinstance(raw, bool) or (isinstance(raw, float) and raw != label):
        raise BenchmarkDataError(path, f"label must be one of {', '.join(map(str, allowed))}, got {raw!r}",
                                 line=line)
    return label
