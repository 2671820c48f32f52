"""Open-ended instructions (Self-Instruct's user-oriented set, or your own): is the answer in the right language?

There is no reference answer; we measure the off-target rate (the share of answers in another language than the
instruction's) and the mean answer length. Quality itself is for people: see the win-rate campaigns.

Layout: either one JSONL file per language, `<code>.jsonl` (`sw.jsonl`, `zh-Hans.jsonl`), or one file
`instructions.jsonl` whose objects carry a `language` field. Objects: `{"instruction": ..., "input"?: ...,
"id"?: ..., "response_language"?: ...}`; `response_language` asks for the answer in another language than the
instruction's (a cross-lingual prompt), and the off-target check then expects that language. The prompt ends by
naming the language the answer is expected in ("Write your answer in Tamil."), whichever it is.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from pathlib import Path
from typing import Any

from evaluation import prompts

from .base import Benchmark, BenchmarkDataError, Example, canonical, first, language_name, read_jsonl, text_field

COMBINED = "instructions.jsonl"


def _code(path: Path, line: int, value: dict[str, Any], key: str, default: str | None = None) -> str:
    raw = value.get(key)
    if raw is None and default is not None:
        return default
    code = canonical(raw) if isinstance(raw, str) else None
    if code is None:
        raise BenchmarkDataError(path, f'"{key}" must be a language code we know (see GET /api/v1/languages/), '
                                 f"got {raw!r}", line=line)
    return code


class OpenEnded(Benchmark):
    name = "open-ended"
    title = "Open-ended instructions"
    task = "open_ended"
    metrics = ("off_target_rate", "mean_length")
    primary_metric = "off_target_rate"
    dataset = "open_ended"
    layout = f'<code>.jsonl per language, or one {COMBINED} with a "language" field; objects with "instruction"'

    def _per_language_files(self, root: Path) -> dict[str, Path]:
        files = {}
        for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
            code = canonical(path.stem) if path.name != COMBINED else None
            if code:
                files[code] = path
        return files

    def _combined_languages(self, path: Path) -> set[str]:
        return {_code(path, line, value, "language") for line, value in read_jsonl(path)}

    def languages(self, root: Path) -> list[str]:
        found = set(self._per_language_files(root))
        combined = root / COMBINED
        if combined.is_file():
            # A bad line is reported, with its number, when a run loads the file; listing just leaves it out.
            with suppress(BenchmarkDataError):
                found |= self._combined_languages(combined)
        return sorted(found)

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        examples: list[Example] = []
        path = self._per_language_files(root).get(language)
        if path is not None:
            examples += self._read(path, language=language)[language]
        combined = root / COMBINED
        if combined.is_file():
            examples += self._read(combined, language=None).get(language, [])
        if path is None and not combined.is_file():
            raise BenchmarkDataError(root / f"{language}.jsonl", f"file not found; expected {language}.jsonl or "
                                     f"{COMBINED} with a language field")
        seen: set[str] = set()
        for example in examples:
            if example.id in seen:
                raise BenchmarkDataError(path or combined, f"the id {example.id!r} appears twice for {language}")
            seen.add(example.id)
        return first(examples, limit)

    def _read(self, path: Path, *, language: str | None) -> dict[str, list[Example]]:
        """Examples by language; `language` is the file's language, None for the combined file."""
        by_language: dict[str, list[Example]] = defaultdict(list)
        for line, value in read_jsonl(path):
            code = language or _code(path, line, value, "language")
            expected = _code(path, line, value, "response_language", default=code)
            instruction = text_field(path, line, value, "instruction")
            input_text = text_field(path, line, value, "input", required=False)
            example_id = value.get("id")
            by_language[code].append(Example(
                id=str(example_id) if example_id is not None else f"{path.stem}-{line}", language=code,
                input=f"{instruction}\n\n{input_text}" if input_text else instruction, expected_language=expected,
                fields={"instruction": instruction, "input": input_text},
            ))
        return by_language

    def messages(self, example: Example) -> list[dict[str, str]]:
        # The answer is scored against expected_language, so the prompt names it (for every prompt: a monolingual
        # one too, where a model may still drift into English).
        return prompts.open_ended(instruction=example.fields["instruction"], input_text=example.fields["input"],
                                  response_language=language_name(example.expected_language))
