"""From a run's output records to metric values, with the pure metric functions of evaluation/metrics. No Django.

Every value is on a 0–100 scale: BLEU, spBLEU, chrF++ and ROUGE-L as sacrebleu and XL-Sum's scorer give them,
accuracy and the off-target rate as percentages. `n` is the number of examples a value is computed over; for the
off-target rate it is the number of *measured* outputs (on- plus off-target), and `counts` has all three counts
(on-target, off-target, not measurable) so the not-measurable share is never hidden; the value is None when none was
measurable. Each value carries `settings`: how it was computed (sacrebleu's signature for BLEU, spBLEU and chrF++,
the segmenter and stemmer for ROUGE-L, the detector and its rules for the off-target rate).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from annotation.languages import get_language
from evaluation.benchmarks import Benchmark
from evaluation.metrics import accuracy, bleu_score, chrf_pp_score, judge, rouge_l_score
from evaluation.metrics import langid as langid_rules

SPBLEU_MODEL_FILE = "flores200sacrebleuspm"  # the name sacrebleu gives the FLORES-200 model in ~/.sacrebleu/models
SPBLEU_MISSING = "spBLEU: model missing"


@dataclass(frozen=True)
class MetricValue:
    metric: str
    value: float | None
    n: int
    settings: dict[str, Any] = field(default_factory=dict)
    # For the off-target rate: {"on_target": .., "off_target": .., "not_measurable": ..}; None for other metrics.
    counts: dict[str, int] | None = None
    note: str = ""  # why there is no value, when there is none (e.g. SPBLEU_MISSING)


def spbleu_model_path(configured: str | os.PathLike[str] | None) -> Path | None:
    """The FLORES-200 SentencePiece model, if it is on disk: `configured` (settings.SPBLEU_MODEL), else the copy
    sacrebleu keeps after downloading it once ($SACREBLEU or ~/.sacrebleu, models/flores200sacrebleuspm)."""
    candidates = [Path(configured)] if configured else []
    sacrebleu_home = Path(os.environ.get("SACREBLEU", Path.home() / ".sacrebleu"))
    candidates.append(sacrebleu_home / "models" / SPBLEU_MODEL_FILE)
    return next((path for path in candidates if path.is_file()), None)


def off_target_mark(text: str, expected_language: str) -> bool | None:
    """True if `text` is in another language or script than expected, False if not, None if not measurable."""
    spec = get_language(expected_language)
    return judge(text, expected_language, script=spec.script if spec else None).off_target


def off_target_settings() -> dict[str, Any]:
    """The detector and the numbers its rules use (evaluation/metrics/langid.py, docs/evaluation.md)."""
    return {
        "detector": f"py3langid {version('py3langid')} + Unicode script check + OpenCC {version('opencc')} "
                    "Han variants",
        "max_bytes": langid_rules.MAX_BYTES, "min_letters": langid_rules.MIN_LETTERS,
        "min_confidence": langid_rules.MIN_CONFIDENCE, "clear_min": langid_rules.CLEAR_MIN,
        "clear_ratio": langid_rules.CLEAR_RATIO, "denominator": "measured (on + off target)",
    }


def _off_target(records: Sequence[dict[str, Any]]) -> MetricValue:
    # Judged again from the text (not the mark saved with the output), so every count follows the rules in force.
    marks = [off_target_mark(record.get("output") or "", record["expected_language"]) for record in records]
    off, on = marks.count(True), marks.count(False)
    measured = off + on
    # 3 off, 5 on, 2 not measurable -> 3 / 8 = 37.5 %, shown with "2 of 10 not measurable" beside it.
    value = 100 * off / measured if measured else None
    counts = {"on_target": on, "off_target": off, "not_measurable": len(marks) - measured}
    return MetricValue("off_target_rate", value, measured, off_target_settings(), counts)


def _spbleu(outputs: list[str], references: list[str], model: Path | None) -> MetricValue:
    if model is None:
        return MetricValue("spbleu", None, 0, {"tokenizer": "flores200"},
                           note=f"{SPBLEU_MISSING} (manage.py fetch_spbleu_model, docs/evaluation.md)")
    scored = bleu_score(outputs, references, spm_model_path=model)
    return MetricValue("spbleu", scored.value, len(outputs), scored.settings)


def score(benchmark: Benchmark, records: Sequence[dict[str, Any]], *,
          spm_model_path: str | os.PathLike[str] | None = None) -> list[MetricValue]:
    """The benchmark's metrics over the records of one language (all of one benchmark and language).

    `spm_model_path` is the FLORES-200 SentencePiece model for spBLEU (translation only); without it the spBLEU
    row says SPBLEU_MISSING instead of a number.
    """
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
        spec = get_language(target)
        scored_bleu = bleu_score(outputs, references, language=target, script=spec.script if spec else None)
        scored_chrf = chrf_pp_score(outputs, references)
        model = Path(spm_model_path) if spm_model_path and Path(spm_model_path).is_file() else None
        return [MetricValue("bleu", scored_bleu.value, n, scored_bleu.settings),
                _spbleu(outputs, references, model),
                MetricValue("chrf++", scored_chrf.value, n, scored_chrf.settings), _off_target(records)]
    if benchmark.task == "summarization":
        language = records[0].get("expected_language") or records[0].get("language")
        scored_rouge = rouge_l_score(outputs, [record["reference"] for record in records], language=language)
        return [MetricValue("rouge_l", scored_rouge.value, n, scored_rouge.settings), _off_target(records)]
    # Open-ended: no reference; the language of the answer and its length in characters.
    return [_off_target(records), MetricValue("mean_length", sum(map(len, outputs)) / n, n)]
