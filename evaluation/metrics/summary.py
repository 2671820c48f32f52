"""Cross-language summary of one benchmark's per-language scores: the mean, and our parity figure.

Parity is how close the other languages come to the best one, on average:

    parity = mean over languages of (score / best score) × 100

100 means every language scores as well as the best; 50 means languages reach half the best language's score on
average. It is a ratio, so it does not depend on the metric's scale, but it needs a higher-is-better metric with a
floor at 0 (BLEU, chrF++, ROUGE-L, accuracy), not an error rate such as the off-target rate. The best language is
counted too (its ratio is 1). Languages that were skipped are simply not in the mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """mean and parity are None for an empty mapping; parity is also None when the best score is 0."""

    mean: float | None
    best_language: str | None
    parity: float | None


def summarize(scores: Mapping[str, float]) -> Summary:
    """Mean score, the best language (ties go to the first code in sorted order) and parity, for one benchmark."""
    for language, score in scores.items():
        if not math.isfinite(score) or score < 0:
            raise ValueError(f"Score for {language!r} is {score}: parity needs finite scores of 0 or more.")
    if not scores:
        return Summary(mean=None, best_language=None, parity=None)
    best_language = max(sorted(scores), key=lambda language: scores[language])
    best = scores[best_language]
    mean = math.fsum(scores.values()) / len(scores)
    # All scores 0: "how close to the best" has no answer, and 0/0 is not 100.
    # Otherwise mean(score / best) × 100 = mean × 100 / best, e.g. {sw: 20, ta: 10, en: 40}: 70/3 × 100/40 = 58.3.
    parity = None if best == 0 else 100 * mean / best
    return Summary(mean=mean, best_language=best_language, parity=parity)
