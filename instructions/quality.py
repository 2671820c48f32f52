"""Translation quality without a download: checks a candidate translation can fail, and one score to rank by.

`estimate_quality` takes the source, its language, a candidate translation, the target language, optionally the
candidate translated back into the source language (by the same translator) and whether generation stopped at the
token limit, and returns a `QualityScore`: a score in [0, 1], its components and verdict flags. COMET-Kiwi
(unbabel-comet) is the better estimate when the package and a local model are present: translation jobs run it in
its own environment (translation/backends/comet_score.py) and make its score the candidate's with `comet_quality`
(the fallback's hard failures still cap it); `comet_kiwi_available` and `score_with_comet_kiwi` run it in this
process where it imports, and `estimate_quality(comet_kiwi=)` mixes a given score in instead of the round trip.
Pure Python (no Django).

Components (each in [0, 1]):

- ``round_trip``: chrF++ (sacrebleu ``CHRF(word_order=2)``) of the back-translation against the source, divided by
  ``ROUND_TRIP_FULL`` (70) and capped at 1: a back-translation paraphrases, so even a faithful translation seldom
  comes back closer than that. Only with a back-translation.
- ``comet_kiwi``: the COMET-Kiwi score, when given.
- ``language``: 1 when evaluation.metrics.langid judges the candidate to be in the target language, 0.5 when that
  cannot be measured (too short, a language the identifier does not know), 0 when it is off-target.
- ``length``: the candidate's length (letters, digits and combining marks, after code, URLs and e-mail addresses
  are set aside) against the source's, compared with the ratio expected between the two scripts
  (`SCRIPT_DENSITY`): 1 within a factor ``LENGTH_SOFT`` (1.5) of the expected ratio, falling linearly (in log
  scale) to 0 at a factor ``LENGTH_ZERO`` (3). Not judged (1) when the source has fewer than
  ``LENGTH_MIN_SOURCE`` (12) such characters.
- ``repetition``: 1 minus the candidate's repetition beyond the source's (repetition: the share of n-grams, word
  trigrams or, for scripts written without spaces, character 4-grams, that repeat an earlier one), doubled.

Flags: ``empty`` (nothing but spaces); ``wrong_language`` (another language, or the other Chinese variant);
``wrong_script`` (fewer than half the letters in the target's script); ``copy_of_source`` (target and source
languages differ and the candidate's prose has chrF++ of at least ``COPY_CHRF`` (60) against the source's prose);
``truncated`` (generation stopped at the token limit, or the candidate leaves a code fence open that the source
closes); ``repetitive`` (repetition at least ``REPETITION_FLAG`` (0.3) above the source's);
``length_ratio_out_of_range`` (a factor ``LENGTH_FLAG`` (2) or more from the expected ratio).

The score::

    weighted = Σ weight[c] · component[c] / Σ weight[c]   over the components present, with weights
        comet_kiwi 0.5 (when given; then round_trip is not used), round_trip 0.5 (when given),
        language 0.2, length 0.15, repetition 0.15
    score = weighted · cap,   cap = the smallest cap of the flags raised (1 when none):
        empty 0, wrong_language / wrong_script / copy_of_source 0.1, truncated 0.2,
        repetitive / length_ratio_out_of_range 0.6

A hard failure (empty, wrong language or script, copy, truncated) therefore scores at most 0.2, whatever else; a
soft one (repetitive, length) at most 0.6. Multiplying rather than clipping keeps the order among failures, so that
`choose_best` still prefers the least bad candidate when every one failed. Without a back-translation (or a
COMET-Kiwi score) the score only says whether a candidate is broken: a fluent wrong translation in the right
language, script and length scores as well as a correct one. docs/translation-quality.md has the limits.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sacrebleu.metrics import CHRF

from evaluation.metrics.langid import (
    REASON_OTHER_SCRIPT,
    dominant_script,
    judge,
    prose_of,
    script_of,
)

ROUND_TRIP_FULL = 70.0
COPY_CHRF = 60.0
LENGTH_SOFT = 1.5
LENGTH_ZERO = 3.0
LENGTH_FLAG = 2.0
LENGTH_MIN_SOURCE = 12
REPETITION_FLAG = 0.3
REPETITION_MIN_NGRAMS = 4

WEIGHTS = {"comet_kiwi": 0.5, "round_trip": 0.5, "language": 0.2, "length": 0.15, "repetition": 0.15}
CAPS = {
    "empty": 0.0,
    "wrong_language": 0.1,
    "wrong_script": 0.1,
    "copy_of_source": 0.1,
    "truncated": 0.2,
    "repetitive": 0.6,
    "length_ratio_out_of_range": 0.6,
}
HARD_FAILURES = frozenset({"empty", "wrong_language", "wrong_script", "copy_of_source", "truncated"})

# Expected letters, digits and marks per one of English, by script: the length ratio expected from source to target is
# density[target] / density[source]. Chinese (0.32), Japanese (0.45), Arabic (0.77) and Tamil (1.23) are what the
# line-aligned sentences of evaluation/samples/flores200 give (hand-written, 5 sentences; Swahili 0.97, French
# 1.11 in Latin script); the others are rounded from how each script writes a syllable (abugidas count vowel signs
# as characters, the Ethiopic and Canadian syllabaries one character per syllable, Hangul one block per syllable),
# not measured. LENGTH_FLAG's factor of 2 each way is wider than their error.
SCRIPT_DENSITY = {
    "Latn": 1.0, "Cyrl": 1.0, "Grek": 1.1, "Armn": 1.1, "Geor": 1.15, "Arab": 0.8, "Hebr": 0.75, "Thaa": 0.9,
    "Syrc": 0.8, "Deva": 1.05, "Beng": 1.0, "Guru": 1.0, "Gujr": 1.0, "Orya": 1.05, "Taml": 1.25, "Telu": 1.1,
    "Knda": 1.15, "Mlym": 1.3, "Sinh": 1.05, "Olck": 1.0, "Thai": 0.95, "Laoo": 0.9, "Khmr": 1.2, "Mymr": 1.4,
    "Tibt": 1.3, "Ethi": 0.6, "Cans": 0.7, "Cher": 0.7, "Hani": 0.32, "Hans": 0.32, "Hant": 0.32, "Jpan": 0.45,
    "Hira": 0.45, "Kana": 0.45, "Kore": 0.5, "Hang": 0.5,
}  # fmt: skip
# Scripts written without spaces between words: repetition is counted in characters.
_UNSPACED_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Jpan", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.MULTILINE)

COMET_KIWI_ENV = "CROSSFEED_COMETKIWI_MODEL"


@dataclass(frozen=True)
class QualityScore:
    """score in [0, 1]; components (each in [0, 1]) that made it; flags: the verdicts raised, in CAPS' order."""

    score: float
    components: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)

    @property
    def hard_failure(self) -> bool:
        return any(flag in HARD_FAILURES for flag in self.flags)

    @property
    def empty(self) -> bool:
        return "empty" in self.flags

    @property
    def wrong_language(self) -> bool:
        return "wrong_language" in self.flags

    @property
    def wrong_script(self) -> bool:
        return "wrong_script" in self.flags

    @property
    def copy_of_source(self) -> bool:
        return "copy_of_source" in self.flags

    @property
    def truncated(self) -> bool:
        return "truncated" in self.flags

    @property
    def repetitive(self) -> bool:
        return "repetitive" in self.flags

    @property
    def length_ratio_out_of_range(self) -> bool:
        return "length_ratio_out_of_range" in self.flags


def _primary(code: str) -> str:
    return code.replace("_", "-").split("-", 1)[0].lower()


def _chrf(hypothesis: str, reference: str) -> float:
    return float(CHRF(word_order=2).sentence_score(hypothesis, [reference]).score)


def _content_length(text: str) -> int:
    # Vowel signs and viramas (Unicode marks) count: Devanagari or Tamil writes a syllable with them, and leaving
    # them out would halve a Hindi sentence against its English source.
    return sum(char.isalnum() or unicodedata.category(char).startswith("M") for char in prose_of(text))


def _script(language: str, text: str) -> str | None:
    return script_of(language) or dominant_script(text)


def length_ratio(source: str, source_language: str, candidate: str, target_language: str) -> tuple[float, float]:
    """(observed, expected) ratio of candidate to source letters, digits and marks, code and URLs set aside."""
    observed = _content_length(candidate) / max(_content_length(source), 1)
    source_density = SCRIPT_DENSITY.get(_script(source_language, source) or "", 1.0)
    target_density = SCRIPT_DENSITY.get(_script(target_language, candidate) or "", 1.0)
    return observed, target_density / source_density


def _length_component(observed: float, expected: float) -> float:
    if observed <= 0:
        return 0.0
    deviation = abs(math.log(observed / expected))
    soft, zero = math.log(LENGTH_SOFT), math.log(LENGTH_ZERO)
    return 1.0 if deviation <= soft else max(0.0, 1.0 - (deviation - soft) / (zero - soft))


def repetition(text: str, language: str) -> float:
    """Share of n-grams that repeat an earlier one: word trigrams, or character 4-grams where words are not
    spaced; 0 below REPETITION_MIN_NGRAMS n-grams. "a b c a b c a b c" has 7 trigrams, 3 distinct: 4/7."""
    prose = prose_of(text)
    if _script(language, prose) in _UNSPACED_SCRIPTS:
        tokens, n = [char for char in prose if not char.isspace()], 4
    else:
        tokens, n = prose.lower().split(), 3
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(ngrams) < REPETITION_MIN_NGRAMS:
        return 0.0
    return 1.0 - len(set(ngrams)) / len(ngrams)


def _fence_left_open(source: str, candidate: str) -> bool:
    return len(_FENCE.findall(source)) % 2 == 0 and len(_FENCE.findall(candidate)) % 2 == 1


def _language_checks(candidate: str, target_language: str) -> tuple[float, list[str], str]:
    verdict = judge(candidate, target_language)
    if verdict.off_target is None:
        return 0.5, [], verdict.reason
    if verdict.off_target:
        return 0.0, ["wrong_script" if verdict.reason == REASON_OTHER_SCRIPT else "wrong_language"], verdict.reason
    return 1.0, [], verdict.reason


def _combine(components: dict[str, float], flags: list[str]) -> float:
    used = {name: value for name, value in components.items() if name in WEIGHTS}
    if "comet_kiwi" in used:
        used.pop("round_trip", None)
    weighted = sum(WEIGHTS[name] * value for name, value in used.items()) / sum(WEIGHTS[name] for name in used)
    cap = min((CAPS[flag] for flag in flags), default=1.0)
    return round(max(0.0, min(1.0, weighted * cap)), 4)


def estimate_quality(
    *,
    source: str,
    source_language: str,
    candidate: str,
    target_language: str,
    back_translation: str | None = None,
    stopped_at_max_tokens: bool = False,
    comet_kiwi: float | None = None,
) -> QualityScore:
    """The fallback quality estimate of one candidate; the formula is in the module docstring."""
    if not candidate.strip():
        return QualityScore(0.0, {"language": 0.0, "length": 0.0, "repetition": 0.0}, ("empty",),
                            {"language_reason": "empty"})
    flags: list[str] = []
    components: dict[str, float] = {}
    details: dict[str, object] = {}
    components["language"], language_flags, details["language_reason"] = _language_checks(candidate, target_language)
    flags += language_flags
    if _primary(source_language) != _primary(target_language):
        copy = _chrf(prose_of(candidate), prose_of(source)) if prose_of(source).strip() else 0.0
        details["copy_chrf"] = round(copy, 2)
        if copy >= COPY_CHRF:
            flags.append("copy_of_source")
    if stopped_at_max_tokens or _fence_left_open(source, candidate):
        flags.append("truncated")
    observed, expected = length_ratio(source, source_language, candidate, target_language)
    details["length_ratio"], details["expected_length_ratio"] = round(observed, 3), round(expected, 3)
    if _content_length(source) >= LENGTH_MIN_SOURCE:
        components["length"] = _length_component(observed, expected)
        if abs(math.log(max(observed, 1e-9) / expected)) >= math.log(LENGTH_FLAG):
            flags.append("length_ratio_out_of_range")
    else:
        components["length"] = 1.0
    excess = repetition(candidate, target_language) - repetition(source, source_language)
    components["repetition"] = max(0.0, 1.0 - 2 * max(0.0, excess))
    if excess >= REPETITION_FLAG:
        flags.append("repetitive")
    if back_translation is not None:
        components["round_trip"] = min(1.0, _chrf(back_translation, source) / ROUND_TRIP_FULL)
    if comet_kiwi is not None:
        components["comet_kiwi"] = max(0.0, min(1.0, float(comet_kiwi)))
    ordered = tuple(flag for flag in CAPS if flag in flags)
    rounded = {name: round(value, 4) for name, value in components.items()}
    return QualityScore(_combine(components, flags), rounded, ordered, details)


def choose_best(candidates: Sequence[QualityScore]) -> int:
    """Index of the best candidate: the highest score; on a tie, the one without a hard failure, then the one with
    fewer flags, then the earliest (candidates come in the job's translator order, the admin's preference)."""
    if not candidates:
        raise ValueError("No candidates to choose from: pass at least one QualityScore.")
    return min(range(len(candidates)),
               key=lambda i: (-candidates[i].score, candidates[i].hard_failure, len(candidates[i].flags), i))


def comet_quality(comet_kiwi: float, fallback: QualityScore) -> QualityScore:
    """A candidate's quality when COMET-Kiwi scored it: the COMET score (clipped to [0, 1]) is the score, on COMET's
    scale, capped only by the fallback's hard failures (empty, wrong language or script, a copy of the source,
    truncated), which COMET-Kiwi can rate well (a fluent output in the wrong language; the source copied). The soft
    flags (repetitive, length) stay as flags without a cap: COMET sees repetition and omissions itself. The
    fallback's components stay for the record, with `comet_kiwi` and `fallback` (the fallback's own score)."""
    value = max(0.0, min(1.0, float(comet_kiwi)))
    cap = min((CAPS[flag] for flag in fallback.flags if flag in HARD_FAILURES), default=1.0)
    components = {**fallback.components, "comet_kiwi": round(value, 4), "fallback": fallback.score}
    return QualityScore(round(value * cap, 4), components, fallback.flags, dict(fallback.details))


# --- COMET-Kiwi in this process, when unbabel-comet imports beside this module (translation jobs run it in its own
# environment instead: translation/backends/comet_score.py) ------------------------------------------------------


class CometKiwiUnavailable(RuntimeError):
    """unbabel-comet is not installed, or no local COMET-Kiwi checkpoint was found."""


def comet_kiwi_checkpoint(model_path: str | os.PathLike[str] | None = None) -> Path | None:
    """The checkpoint file of a local COMET-Kiwi model: `model_path` or $CROSSFEED_COMETKIWI_MODEL, either the
    model's folder (as downloaded from the hub: hparams.yaml, checkpoints/model.ckpt) or the .ckpt file itself.
    None when neither is set or the file is not there."""
    configured = model_path or os.environ.get(COMET_KIWI_ENV, "")
    if not str(configured).strip():
        return None
    path = Path(configured).expanduser()
    checkpoint = path / "checkpoints" / "model.ckpt" if path.is_dir() else path
    return checkpoint if checkpoint.is_file() else None


def comet_kiwi_available(model_path: str | os.PathLike[str] | None = None) -> bool:
    """True only when `import comet` would work and a local checkpoint is configured (see comet_kiwi_checkpoint)."""
    return importlib.util.find_spec("comet") is not None and comet_kiwi_checkpoint(model_path) is not None


@cache
def _comet_model(checkpoint: str):  # noqa: ANN202 - comet's model class is only importable when installed
    from comet import load_from_checkpoint

    # local_files_only: the encoder's tokenizer (InfoXLM / XLM-R) must come from the local Hugging Face cache too.
    return load_from_checkpoint(checkpoint, local_files_only=True)


def score_with_comet_kiwi(
    pairs: Sequence[tuple[str, str]],
    model_path: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 16,
    gpus: int | None = None,
) -> list[float]:
    """COMET-Kiwi scores (about 0..1, higher is better) of (source, translation) pairs, with unbabel-comet's
    documented API: load_from_checkpoint(path) and model.predict([{"src", "mt"}], batch_size, gpus).scores."""
    checkpoint = comet_kiwi_checkpoint(model_path)
    if importlib.util.find_spec("comet") is None:
        raise CometKiwiUnavailable(
            "COMET-Kiwi needs the unbabel-comet package, which is not installed: install it "
            "(pip install unbabel-comet) or use the fallback estimate (estimate_quality)."
        )
    if checkpoint is None:
        raise CometKiwiUnavailable(
            f"No COMET-Kiwi model at {str(model_path or os.environ.get(COMET_KIWI_ENV) or '(not set)')!r}: set "
            f"{COMET_KIWI_ENV} to the folder of a downloaded Unbabel/wmt22-cometkiwi-da (with "
            "checkpoints/model.ckpt); Crossfeed never downloads it."
        )
    if not pairs:
        return []
    if gpus is None:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    model = _comet_model(str(checkpoint))
    samples = [{"src": source, "mt": translation} for source, translation in pairs]
    prediction = model.predict(samples, batch_size=batch_size, gpus=gpus, progress_bar=False)
    return [float(value) for value in prediction.scores]
