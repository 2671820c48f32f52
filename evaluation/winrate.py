"""Human win rate of one model against another, from pairwise rankings. Pure: lists of outcomes in, numbers out.

Each judgment of an item holding one answer of model A and one of model B gives B an outcome: 1 if annotators
ranked B's answer better, 0 if worse, 0.5 for a tie (equal ranks). The win share is the mean outcome over all
judgments: 0.5 means the two models are indistinguishable, 0.6 that B is preferred in 60% of comparisons with ties
split evenly. We use this simple share rather than Bradley-Terry: with two models, Bradley-Terry's strength ratio
is a monotone function of the same share and adds nothing but an extra step to explain.

The confidence interval is a percentile bootstrap that resamples *items*, not judgments: the k judgments of one
item share its prompt and its two answers, so they are not independent, and resampling them one by one would give
intervals that are too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class WinShare:
    share: float | None  # of the candidate (B); None without judgments
    low: float | None
    high: float | None
    items: int
    judgments: int
    wins: int
    ties: int
    losses: int


def outcome(rank_a: int, rank_b: int) -> float:
    """B's outcome from one judgment's ranks (1 is best)."""
    if rank_b < rank_a:
        return 1.0
    return 0.5 if rank_a == rank_b else 0.0


def win_share(outcomes_by_item: Sequence[Sequence[float]], *, resamples: int = RESAMPLES, seed: int = 0,
              confidence: float = CONFIDENCE) -> WinShare:
    """Mean outcome over every judgment, with a bootstrap interval over items (fixed seed: the page is stable)."""
    items = [list(item) for item in outcomes_by_item if len(item)]
    flat = [value for item in items for value in item]
    wins, ties = sum(v == 1.0 for v in flat), sum(v == 0.5 for v in flat)
    if not flat:
        return WinShare(None, None, None, 0, 0, 0, 0, 0)
    share = sum(flat) / len(flat)
    sums = np.array([sum(item) for item in items])
    counts = np.array([len(item) for item in items])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(items), size=(resamples, len(items)))
    # Each resample's share: the judgments of the drawn items pooled, e.g. items (1, 0.5) and (0,) -> 1.5 / 3.
    shares = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    return WinShare(share=share, low=float(low), high=float(high), items=len(items), judgments=len(flat),
                    wins=int(wins), ties=int(ties), losses=len(flat) - int(wins) - int(ties))
