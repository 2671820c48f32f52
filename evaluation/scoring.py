"""From a run's output records to metric values, with the pure metric functions of evaluation/metrics. No Django.

Every value is on a 0–100 scale: BLEU, chrF++ and ROUGE-L as sacrebleu and rouge-score give them, accuracy and the
off-target rate as percentages. `n` is the number of examples a value is computed over; for the off-target rate
it is the number of *measurable* outputs (an empty answer, or one the identifier is unsure about, is neither on
nor off target), and the value is None when none was measurable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from annotation.languages import get_language
from evaluation.benchmarks import Benchmark
from evaluation.metrics import accuracy, bleu, chrf_pp, is_off_target, rouge_l


@dataclass(frozen=True)
class MetricValue:
    metric: str
    value: float | None
    n: int


def off_target_mark(text: str, expected_language: str) -> bool | None:
    """True if `text` is in another language than expected, False if not, None if that cannot be measured."""
    spec = get_language(expected_language)
    return is_off_target(text, expected_language, script=spec.script if spec else None)


def _off_target(records: Sequence[dict[str, Any]]) -> MetricValue:
    marks = [record.get("off_target") for record in records]
    measured = [mark for mark in marks if mark is not None]
    # Same arithmetic as metrics.off_target_rate: 3 off, 5 on, 2 not measurable -> 3 / 8, not 3 / 10.
    value = 100 * sum(measured) / len(measured) if measured else None
    return MetricValue("off_target_rate", value, len(measured))


def score(benchmark: Benchmark, records: Sequence[dict[str, Any]]) -> list[MetricValue]:
    """The benchmark's metrics over the records of one language (all of one benchmark and language)."""
    if not records:
        return []
    n = len(records)
    if benchmark.task == "classification":
        predictions = [record["prediction"] for record in records]
        return [MetricValue("accuracy", accuracy(predictions, [record["label"] for record in records]), n)]
    outputs = [record.get("output") or "" for record in records]
    if benchmark.task == "translation":
        references = [record["reference"] for record in records]
        target = records[0]["expected_language"]
        return [MetricValue("bleu", bleu(outputs, references, language=target), n),
                MetricValue("chrf++", chrf_pp(outputs, references), n), _off_target(records)]
    if benchmark.task == "summarization":
        return [MetricValue("rouge_l", rouge_l(outputs, [record["reference"] for record in records]), n),
                _off_target(records)]
    # Open-ended: no reference; the language of the answer and its length in characters.
    return [_off_target(records), MetricValue("mean_length", sum(map(len, outputs)) / n, n)]
