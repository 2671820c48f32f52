"""FLORES-200 devtest: translation from English into each language, and from each language into English.

Layout (as released): a folder `devtest/` with one file per FLORES-200 code, `eng_Latn.devtest`,
`swh_Latn.devtest`, ..., one sentence per line; line n of every file is the same sentence. The data root is that
release folder (holding `devtest/`) or the `devtest/` folder itself; `manage.py fetch_benchmarks` writes it from
FLORES+ (openlanguagedata/flores_plus), in the devtest order.

Sample: the seed's. Its code (xLLMs-100 inference/MT/inference_mt.py) reads the two devtest files line by line
and takes `datasets.Dataset.shuffle(seed=42).select(range(200))`: the same 200 line numbers for every language
and both directions (`seeded_sample`). A run without a limit takes those 200; a limit k takes the first k of the
same shuffle, so a smaller run is a subset of the seed's sample.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import ClassVar

from annotation.languages import all_languages
from evaluation import prompts

from .base import Benchmark, BenchmarkDataError, Example, language_name, read_lines, require_file, seeded_sample

PIVOT = "en"


@cache
def _flores_codes() -> dict[str, str]:
    """FLORES-200 code -> our code, for every registry language."""
    return {spec.flores_code: spec.code for spec in all_languages()}


def flores_code(code: str) -> str:
    return {ours: flores for flores, ours in _flores_codes().items()}[code]


def devtest_folder(root: Path) -> Path:
    return root / "devtest" if (root / "devtest").is_dir() else root


def read_sentences(path: Path) -> list[str]:
    sentences = []
    for number, text in read_lines(path):
        if not text.strip():
            raise BenchmarkDataError(path, "empty line: FLORES files hold one sentence on every line", line=number)
        sentences.append(text.strip())
    return sentences


class FloresBenchmark(Benchmark):
    task = "translation"
    metrics = ("bleu", "chrf++", "off_target_rate")
    primary_metric = "bleu"
    dataset = "flores200"
    layout = "devtest/<FLORES-200 code>.devtest, one sentence per line, line-aligned (eng_Latn.devtest required)"
    default_limit = 200  # the seed: 200 sentences per direction
    into_english: ClassVar[bool]

    def languages(self, root: Path) -> list[str]:
        folder = devtest_folder(root)
        codes = _flores_codes()
        found = {codes[path.stem] for path in folder.glob("*.devtest") if path.stem in codes}
        return sorted(found - {PIVOT})

    def supported_languages(self) -> list[str] | None:
        # FLORES covers every registry language (the registry is drawn from it); English is the pivot.
        return [code for code in super().supported_languages() or [] if code != PIVOT]

    def _file(self, root: Path, code: str) -> Path:
        return require_file(devtest_folder(root) / f"{flores_code(code)}.devtest",
                            f"the FLORES-200 devtest file of {language_name(code)}")

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        if language == PIVOT:
            raise BenchmarkDataError(devtest_folder(root), "English is the pivot: pick another language")
        pivot_path, other_path = self._file(root, PIVOT), self._file(root, language)
        pivot, other = read_sentences(pivot_path), read_sentences(other_path)
        if len(pivot) != len(other):
            raise BenchmarkDataError(other_path, f"{len(other)} lines, but {pivot_path.name} has {len(pivot)}: "
                                                 "FLORES files must be line-aligned")
        source_code, target_code = (language, PIVOT) if self.into_english else (PIVOT, language)
        sources, targets = (other, pivot) if self.into_english else (pivot, other)
        return [
            Example(id=str(index + 1), language=language, input=sources[index], expected_language=target_code,
                    reference=targets[index], fields={"source": source_code, "target": target_code})
            for index in seeded_sample(len(sources), self.limit_for(limit))
        ]

    def missing_reason(self, language: str) -> str:
        if language == PIVOT:
            return f"English is the pivot of {self.name}: there is no English-to-English pair"
        return super().missing_reason(language)

    def messages(self, example: Example) -> list[dict[str, str]]:
        return prompts.translation(text=example.input, source=language_name(example.fields["source"]),
                                   target=language_name(example.fields["target"]))


class FloresFromEnglish(FloresBenchmark):
    name = "flores-en-xx"
    title = "FLORES-200 devtest, English → language"
    into_english = False


class FloresIntoEnglish(FloresBenchmark):
    name = "flores-xx-en"
    title = "FLORES-200 devtest, language → English"
    into_english = True
