"""Belebele: multiple-choice reading comprehension on FLORES passages, in 122 language variants.

Each question comes with a FLORES-200 passage and four answers, one correct. Scored like PAWS-X and XCOPA
(classification.py): nothing is generated, each answer's letter is scored by its log-likelihood as the assistant's
reply and the most likely one is the prediction; the metric is accuracy (chance is 25%). The prompt is
lm-evaluation-harness's for Belebele, character for character (passage, question, the four answers lettered A-D,
then "Answer" with a full-width colon, a quirk of its template kept so the numbers compare), and the scored
options are the letters after lm-eval's default target delimiter (" A" … " D"), as there. `plain_context` gives
that text for the plain-text scoring path lm-eval uses by default (inference.benchmark_prompt), so the numbers
compare with lm-eval's `belebele_<code>`; `messages` puts the same text in a user turn (lm-eval's
--apply_chat_template).

Layout (as released, and as the Hub's facebook/belebele holds it under `data/`): one JSONL file per FLORES-200
code, `hin_Deva.jsonl`, `urd_Arab.jsonl`, ..., in the data root or in `data/`; objects `{"link",
"question_number", "flores_passage", "question", "mc_answer1", ..., "mc_answer4", "correct_answer_num": "1".."4",
"dialect", "ds"}`. Variants outside the registry (hin_Latn, arb_Latn, ...) are ignored. A limit takes the first
questions of the file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from annotation.languages import all_languages

from .base import (
    Benchmark,
    BenchmarkDataError,
    Example,
    first,
    label_field,
    language_name,
    read_jsonl,
    text_field,
)

LETTERS = ("A", "B", "C", "D")
# The scored continuations: lm-eval puts its default target_delimiter, a space, between the context and the choice,
# so it scores " A" after "Answer：" (as PAWS-X and XCOPA carry their delimiter in their options, prompts.py).
OPTIONS = tuple(f" {letter}" for letter in LETTERS)
ANSWERS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")


@cache
def _codes() -> dict[str, str]:
    """FLORES-200 code -> our code, for every registry language."""
    return {spec.flores_code: spec.code for spec in all_languages()}


def reading_prompt(*, passage: str, question: str, answers: tuple[str, ...]) -> str:
    """lm-eval's belebele doc_to_text: "P: …\nQ: …\nA: …\nB: …\nC: …\nD: …\nAnswer：" (U+FF1A, as there)."""
    lettered = "\n".join(f"{letter}: {answer}" for letter, answer in zip(LETTERS, answers, strict=True))
    return f"P: {passage}\nQ: {question.strip()}\n{lettered}\nAnswer\uff1a"


class Belebele(Benchmark):
    name = "belebele"
    title = "Belebele, reading comprehension"
    task = "classification"
    metrics = ("accuracy",)
    primary_metric = "accuracy"
    dataset = "belebele"
    layout = ('<FLORES-200 code>.jsonl (e.g. hin_Deva.jsonl), flat or in data/; objects with "flores_passage", '
              '"question", "mc_answer1".."mc_answer4", "correct_answer_num"')

    def _files(self, root: Path) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for folder in (root, root / "data"):
            for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
                code = _codes().get(path.stem)
                if code:
                    files.setdefault(code, path)
        return files

    def languages(self, root: Path) -> list[str]:
        return sorted(self._files(root))

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        path = self._files(root).get(language)
        if path is None:
            raise BenchmarkDataError(root / f"{language}.jsonl", "file not found; expected the Belebele file of "
                                     f"{language_name(language)} (<FLORES-200 code>.jsonl)")
        examples, seen = [], set()
        for line, value in read_jsonl(path):
            passage = text_field(path, line, value, "flores_passage")
            question = text_field(path, line, value, "question")
            answers = tuple(text_field(path, line, value, key) for key in ANSWERS)
            label = label_field(path, line, value.get("correct_answer_num"), (1, 2, 3, 4)) - 1
            link, number = value.get("link"), value.get("question_number")
            example_id = f"{link}#{number}" if link and number is not None else f"line-{line}"
            if example_id in seen:
                raise BenchmarkDataError(path, f"the question {example_id!r} appears twice", line=line)
            seen.add(example_id)
            examples.append(Example(
                id=example_id, language=language, input=f"{passage}\n\n{question}", expected_language=language,
                options=OPTIONS, label=label,
                fields={"passage": passage, "question": question, **dict(zip(ANSWERS, answers, strict=True))},
            ))
        return first(examples, self.limit_for(limit))

    def plain_context(self, example: Example) -> str:
        answers = tuple(example.fields[key] for key in ANSWERS)
        return reading_prompt(passage=example.fields["passage"], question=example.fields["question"], answers=answers)

    def messages(self, example: Example) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.plain_context(example)}]
