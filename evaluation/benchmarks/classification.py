"""Classification by log-likelihood: PAWS-X (paraphrase or not) and XCOPA (cause or effect), in two formats.

Nothing is generated: each option is scored by the sum of its tokens' log-probabilities given the prompt, and the
most likely option is the prediction, as lm-evaluation-harness does.

- `pawsx`, `xcopa` (the default): lm-evaluation-harness's tasks exactly: its context and choices per language
  (evaluation/prompts.py), sent as plain text without a chat template (`plain_context`), as lm-eval sends them.
  Their numbers compare with lm-eval's `paws_<lang>` and `xcopa_<lang>`.
- `pawsx-seed`, `xcopa-seed`: the seed paper's format: an instruction through the model's chat template, the
  answer a yes/no or a letter. They are separate benchmarks so that results of the two formats never mix.

PAWS-X layout (as released, `x-final/`): a folder per language code (de en es fr ja ko zh), holding `test_2k.tsv`
(or `test.tsv`): a header line `id sentence1 sentence2 label`, tab-separated, label 1 = paraphrase. Rows with an
empty sentence are left out (a few machine-translated pairs lack one side).

XCOPA layout (as released, `data/`): a folder per language code holding `test.<code>.jsonl` (the files may also
sit directly in the data root); objects `{"premise", "choice1", "choice2", "question": "cause"|"effect",
"label": 0|1, "idx"}`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evaluation import prompts
from evaluation.prompts import Messages

from .base import (
    Benchmark,
    BenchmarkDataError,
    Example,
    canonical,
    first,
    label_field,
    language_name,
    read_jsonl,
    read_lines,
    text_field,
)

PAWSX_HEADER = ["id", "sentence1", "sentence2", "label"]
PAWSX_FILES = ("test_2k.tsv", "test.tsv")


def _language_folders(root: Path) -> dict[str, Path]:
    """Our code -> folder, for every sub-folder whose name is a language code we know."""
    folders = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        code = canonical(folder.name) if folder.is_dir() else None
        if code:
            folders[code] = folder
    return folders


class PawsX(Benchmark):
    name = "pawsx"
    title = "PAWS-X, test split"
    task = "classification"
    metrics = ("accuracy",)
    primary_metric = "accuracy"
    dataset = "pawsx"
    layout = "<language code>/test_2k.tsv with the header id, sentence1, sentence2, label (tab-separated)"

    def _path(self, root: Path, code: str) -> Path | None:
        folder = _language_folders(root).get(code)
        if folder is None:
            return None
        return next((folder / name for name in PAWSX_FILES if (folder / name).is_file()), None)

    def languages(self, root: Path) -> list[str]:
        return sorted(code for code in _language_folders(root) if self._path(root, code))

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        path = self._path(root, language)
        if path is None:
            raise BenchmarkDataError(root / language / PAWSX_FILES[0], "file not found; expected the PAWS-X test "
                                     f"file of {language_name(language)}")
        lines = read_lines(path)
        number, header = next(lines, (1, ""))
        if header.split("\t") != PAWSX_HEADER:
            raise BenchmarkDataError(path, f"expected the header {' '.join(PAWSX_HEADER)} (tab-separated)",
                                     line=number)
        examples = []
        for number, text in lines:
            if not text.strip():
                continue
            row = next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE))
            if len(row) != len(PAWSX_HEADER):
                raise BenchmarkDataError(path, f"expected 4 tab-separated columns, got {len(row)}", line=number)
            row_id, sentence1, sentence2, raw_label = (cell.strip() for cell in row)
            label = label_field(path, number, raw_label)
            if not sentence1 or not sentence2:
                continue
            examples.append(Example(
                id=row_id or f"line-{number}", language=language, input=f"{sentence1}\n{sentence2}",
                expected_language=language, options=self.options(sentence1, sentence2, language), label=label,
                fields={"sentence1": sentence1, "sentence2": sentence2},
            ))
        return first(examples, limit)

    def options(self, sentence1: str, sentence2: str, language: str) -> tuple[str, ...]:
        return prompts.pawsx_choices(sentence1=sentence1, sentence2=sentence2, language=language)

    def plain_context(self, example: Example) -> str | None:
        """lm-eval's context: none (each choice holds both sentences)."""
        return prompts.PAWSX_CONTEXT

    def messages(self, example: Example) -> Messages:
        # What lm-eval sends with --apply_chat_template; Crossfeed scores plain_context, lm-eval's default.
        return [{"role": "user", "content": prompts.PAWSX_CONTEXT}]


class PawsXSeed(PawsX):
    name = "pawsx-seed"
    title = "PAWS-X, test split (the seed paper's yes/no prompt)"

    def plain_context(self, example: Example) -> str | None:
        return None  # through the chat template

    def options(self, sentence1: str, sentence2: str, language: str) -> tuple[str, ...]:
        return prompts.YES_NO_OPTIONS

    def messages(self, example: Example) -> Messages:
        return prompts.pawsx_yes_no(sentence1=example.fields["sentence1"], sentence2=example.fields["sentence2"])


class XCopa(Benchmark):
    name = "xcopa"
    title = "XCOPA, test split"
    task = "classification"
    metrics = ("accuracy",)
    primary_metric = "accuracy"
    dataset = "xcopa"
    layout = '<code>/test.<code>.jsonl with "premise", "choice1", "choice2", "question", "label"'

    def _files(self, root: Path) -> dict[str, Path]:
        files = {}
        candidates = [*root.glob("test.*.jsonl"), *root.glob("*/test.*.jsonl")] if root.is_dir() else []
        for path in sorted(candidates):
            code = canonical(path.name.split(".")[1])
            if code:
                files.setdefault(code, path)
        return files

    def languages(self, root: Path) -> list[str]:
        return sorted(self._files(root))

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        path = self._files(root).get(language)
        if path is None:
            raise BenchmarkDataError(root / language / f"test.{language}.jsonl",
                                     f"file not found; expected the XCOPA test file of {language_name(language)}")
        examples = []
        for line, value in read_jsonl(path):
            premise = text_field(path, line, value, "premise")
            choices = (text_field(path, line, value, "choice1"), text_field(path, line, value, "choice2"))
            question = value.get("question")
            if question not in ("cause", "effect"):
                raise BenchmarkDataError(path, f'"question" must be "cause" or "effect", got {question!r}',
                                         line=line)
            label = label_field(path, line, value.get("label"))
            example_id = value.get("idx", value.get("id"))
            examples.append(Example(
                id=str(example_id) if example_id is not None else f"line-{line}", language=language,
                input=f"{premise} ({question})", expected_language=language, options=self.options(*choices),
                label=label, fields={"premise": premise, "question": question, "choice1": choices[0],
                                     "choice2": choices[1]},
            ))
        return first(examples, limit)

    def options(self, choice1: str, choice2: str) -> tuple[str, ...]:
        return prompts.xcopa_choices(choice1=choice1, choice2=choice2)

    def plain_context(self, example: Example) -> str | None:
        return prompts.xcopa_context(premise=example.fields["premise"], question=example.fields["question"],
                                     language=example.language)

    def messages(self, example: Example) -> Messages:
        # What lm-eval sends with --apply_chat_template; Crossfeed scores plain_context, lm-eval's default.
        return [{"role": "user", "content": prompts.xcopa_context(
            premise=example.fields["premise"], question=example.fields["question"], language=example.language)}]


class XCopaSeed(XCopa):
    name = "xcopa-seed"
    title = "XCOPA, test split (the seed paper's lettered prompt)"

    def plain_context(self, example: Example) -> str | None:
        return None  # through the chat template

    def options(self, choice1: str, choice2: str) -> tuple[str, ...]:
        return prompts.LETTERED_OPTIONS

    def messages(self, example: Example) -> Messages:
        fields = example.fields
        return prompts.xcopa_lettered(premise=fields["premise"], question=fields["question"],
                                      choice1=fields["choice1"], choice2=fields["choice2"])
