"""Agreement between annotators, for the export report and the campaign stats (pure; no Django here).

Krippendorff's alpha (ordinal)
    A *unit* is one response of one item; each judgment of the item *codes* that unit with the response's rank,
    normalised within the judgment to ``(midrank - 1) / (n - 1)`` in [0, 1] (0 best, 1 worst), so items with 2
    and 8 responses share one scale and the rankings 1,1,3 and 1,1,2 (both "two tied best") code alike.
    Alpha comes from the ``krippendorff`` package, level ``ordinal``. We hand it *value counts* (units × values:
    how many coders gave each value to each unit), the package's other input form, instead of the
    annotators × units reliability matrix: a language pair may have hundreds of annotators while each unit has
    3–5 coders, so that matrix is almost all NaN and the package would widen it to annotators × units × values.
    Alpha is undefined, and returned as ``None`` (never NaN), when no unit has two coders (every item has a
    single judgment) or when all coded values are equal (nothing varies, so there is no disagreement to expect).

    ``AlphaAccumulator`` takes items one at a time, so a single streaming pass over an export can feed one
    accumulator per language pair; merging them gives the campaign's. It keeps a count per distinct unit *pattern*
    (the sorted values its coders gave), not per unit, so its memory does not grow with the item count.

Annotator agreement
    For each annotator: the mean, over the items they judged together with at least one other annotator, of
    Kendall's tau-b between their ranking and the Borda consensus of the *other* judgments of that item
    (leave-one-out, so an annotator is never compared with themselves). Tau-b rather than Spearman: rankings
    are short (2–8) and full of ties, which tau-b corrects for explicitly; and it counts concordant minus
    discordant *pairs*, the unit the exported preferences are made of. The consensus is the Borda score itself
    (net pairwise votes, as in ``pairs.py``), ties kept: breaking them by id would invent disagreement.
    An item where the annotator tied everything, or where the others' consensus is all tied, has no tau-b and
    is not counted in ``n_items``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import krippendorff
import numpy as np

from annotation.export.pairs import ItemJudgment

# The package's coincidence step materialises float64 arrays of shape (units, values, values), several at once.
# 4-response items give 7 normalised values (0, 1/6, ..., 1), so 250k items = 1M units -> 1M × 7 × 7 = 49M
# cells ≈ 390 MB per temporary. Above this many cells alpha is computed on a deterministic sample (see
# `_proportional_sample`): 20M cells × 8 B = 160 MB per temporary.
MAX_ALPHA_CELLS = 20_000_000

UnitPattern = tuple[float, ...]


def normalised_ranks(ranks: Mapping[int, int]) -> dict[int, float]:
    """Each response's mid-rank scaled to [0, 1], 0 best: ``{1: 1, 2: 1, 3: 3}`` -> ``{1: 0.25, 2: 0.25, 3: 1.0}``.

    Mid-rank = 1 + (responses ranked strictly better) + (other responses tied with it) / 2; for ranks 1,1,3 the
    two tied best get 1.5, so (1.5 - 1) / (3 - 1) = 0.25 and the third (3 - 1) / 2 = 1.0.
    """
    return dict(zip(ranks, _normalised_values(tuple(ranks.values())), strict=True))


@lru_cache(maxsize=65_536)
def _normalised_values(rank_values: tuple[int, ...]) -> tuple[float, ...]:
    """Cached by rank pattern: 4 responses on ranks 1-4 give at most 4**4 = 256 patterns, so each is computed once.

    (2·better + tied_others) / (2·(n - 1)) with better = bisect_left and better + tied_others = bisect_right - 1
    in the sorted ranks: a ratio of whole numbers, so equal ratios give equal floats (IEEE division is correctly
    rounded) and values from items of different sizes can be compared exactly.
    """
    n = len(rank_values)
    if n < 2:
        return (0.0,) * n
    ordered = sorted(rank_values)
    denominator = 2 * (n - 1)
    return tuple((bisect_left(ordered, rank) + bisect_right(ordered, rank) - 1) / denominator for rank in rank_values)


class AlphaAccumulator:
    """Krippendorff's ordinal alpha over items fed one at a time (see the module doc)."""

    def __init__(self, *, max_cells: int = MAX_ALPHA_CELLS) -> None:
        self.max_cells = max_cells
        self.patterns: Counter[UnitPattern] = Counter()

    def add(self, judgments: Sequence[ItemJudgment]) -> None:
        """Add one item's judgments. Units coded by fewer than two judgments are skipped: they pair with nothing."""
        if len(judgments) < 2:
            return
        coded: dict[int, list[float]] = {}
        for judgment in judgments:
            ranks = judgment.ranks
            if len(ranks) < 2:
                continue  # one response, no ranking: nothing to agree on
            for response_id, value in zip(ranks, _normalised_values(tuple(ranks.values())), strict=True):
                coded.setdefault(response_id, []).append(value)
        for values in coded.values():
            if len(values) >= 2:
                self.patterns[tuple(sorted(values))] += 1

    def merge(self, other: AlphaAccumulator) -> None:
        """Pool another group's units into this one: campaign alpha = merged language-pair accumulators."""
        self.patterns.update(other.patterns)

    @property
    def n_units(self) -> int:
        return self.patterns.total()

    def alpha(self) -> float | None:
        """Ordinal alpha, or None when undefined (no unit with two coders, or a single value overall)."""
        domain = sorted({value for pattern in self.patterns for value in pattern})
        if len(domain) < 2:
            return None
        patterns = self.patterns
        target_units = max(self.max_cells // len(domain) ** 2, 1)
        if patterns.total() > target_units:
            patterns = _proportional_sample(patterns, target_units)
        value_counts = _value_counts(patterns, domain)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is reported as None below, not warned about
            result = float(
                krippendorff.alpha(value_counts=value_counts, value_domain=domain, level_of_measurement="ordinal")
            )
        return result if math.isfinite(result) else None


def alpha_for_items(items: Iterable[Sequence[ItemJudgment]], *, max_cells: int = MAX_ALPHA_CELLS) -> float | None:
    """Ordinal Krippendorff's alpha of a group of items (a language pair, a campaign); None when undefined."""
    accumulator = AlphaAccumulator(max_cells=max_cells)
    for judgments in items:
        accumulator.add(judgments)
    return accumulator.alpha()


def _value_counts(patterns: Mapping[UnitPattern, int], domain: list[float]) -> np.ndarray:
    """Units × values matrix: one row per unit, repeated by pattern, in sorted pattern order."""
    column = {value: c for c, value in enumerate(domain)}
    ordered = sorted(patterns.items())
    rows = np.zeros((len(ordered), len(domain)), dtype=np.int64)
    for r, (pattern, _) in enumerate(ordered):
        for value in pattern:
            rows[r, column[value]] += 1
    return np.repeat(rows, [count for _, count in ordered], axis=0)


def _proportional_sample(patterns: Counter[UnitPattern], target_units: int) -> Counter[UnitPattern]:
    """A deterministic sample of ``target_units`` units that keeps the share of every unit pattern.

    Alpha only sees units through their patterns, so sampling each pattern in proportion (largest remainder,
    ties by pattern) is the sample with the least error, and it does not depend on the order items came in.
    E.g. 1M units -> 400k: a pattern held by 3,001 units keeps 1,200.4 -> 1,200 (+1 if its remainder is among
    the largest). The coincidence sums shrink by the same factor, so apart from rounding each pattern to whole
    units alpha moves only by O(1/units).
    """
    total = patterns.total()
    quotas = {pattern: count * target_units / total for pattern, count in sorted(patterns.items())}
    sample = Counter({pattern: int(quota) for pattern, quota in quotas.items()})
    short = target_units - sample.total()
    by_remainder = sorted(quotas, key=lambda pattern: (-(quotas[pattern] - int(quotas[pattern])), pattern))
    for pattern in by_remainder[:short]:
        sample[pattern] += 1
    return +sample  # drops patterns that got no unit


@dataclass(frozen=True, slots=True)
class AnnotatorAgreement:
    """Mean leave-one-out Kendall tau-b of one annotator over ``n_items`` items (None when ``n_items`` is 0)."""

    n_items: int
    agreement: float | None


class AnnotatorAgreementAccumulator:
    """Leave-one-out agreement per annotator over items fed one at a time (see the module doc)."""

    def __init__(self) -> None:
        self.tau_sums: dict[int, float] = {}
        self.n_items: dict[int, int] = {}

    def add(self, judgments: Sequence[ItemJudgment]) -> None:
        for judgment in judgments:
            self.tau_sums.setdefault(judgment.annotator_id, 0.0)
            self.n_items.setdefault(judgment.annotator_id, 0)
        if len(judgments) < 2:
            return
        nets = [_net_values(tuple(judgment.ranks.values())) for judgment in judgments]
        total: dict[int, int] = {}
        for judgment, net in zip(judgments, nets, strict=True):
            for response_id, score in zip(judgment.ranks, net, strict=True):
                total[response_id] = total.get(response_id, 0) + score
        for judgment, own in zip(judgments, nets, strict=True):
            # Borda of the others = everyone's net votes minus this annotator's own. The own net score orders
            # responses exactly as the own ranks do (ties included), so tau-b can take it in their place.
            others = [total[response_id] - score for response_id, score in zip(judgment.ranks, own, strict=True)]
            tau = kendall_tau_b(own, others)
            if tau is not None:
                self.tau_sums[judgment.annotator_id] += tau
                self.n_items[judgment.annotator_id] += 1

    def result(self) -> dict[int, AnnotatorAgreement]:
        return {
            annotator_id: AnnotatorAgreement(
                n_items=self.n_items[annotator_id],
                agreement=self.tau_sums[annotator_id] / self.n_items[annotator_id]
                if self.n_items[annotator_id]
                else None,
            )
            for annotator_id in sorted(self.n_items)
        }


def annotator_agreement(items: Iterable[Sequence[ItemJudgment]]) -> dict[int, AnnotatorAgreement]:
    """Each annotator's mean tau-b against the others' consensus, keyed by annotator id in ascending order."""
    accumulator = AnnotatorAgreementAccumulator()
    for judgments in items:
        accumulator.add(judgments)
    return accumulator.result()


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two equally long score lists (higher = better in both); None when either is all tied.

    tau_b = (concordant - discordant) / sqrt((n0 - ties_x) · (n0 - ties_y)), n0 = n(n-1)/2 pairs; a pair tied
    in x or y is neither concordant nor discordant.
    """
    if len(x) != len(y):
        raise ValueError(f"Kendall's tau needs two lists of the same length, got {len(x)} and {len(y)}.")
    score = untied_x = untied_y = 0
    for p, q in _index_pairs(len(x)):
        dx, dy = x[p] - x[q], y[p] - y[q]
        if dx:
            untied_x += 1
            if dy:
                score += 1 if (dx > 0) == (dy > 0) else -1
        if dy:
            untied_y += 1
    if not untied_x or not untied_y:
        return None
    return score / math.sqrt(untied_x * untied_y)


@lru_cache(maxsize=16)
def _index_pairs(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((p, q) for p in range(n) for q in range(p + 1, n))


@lru_cache(maxsize=65_536)
def _net_values(rank_values: tuple[int, ...]) -> tuple[int, ...]:
    # worse - better = (n - bisect_right) - bisect_left in the sorted ranks.
    ordered = sorted(rank_values)
    n = len(ordered)
    return tuple(n - bisect_right(ordered, rank) - bisect_left(ordered, rank) for rank in rank_values)
