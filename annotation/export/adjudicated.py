"""Pairs and SFT targets of an item a reviewer adjudicated, and the reliability weight of a pair (pure; no Django).

Adjudicated items
    A reviewer's final ranking replaces the consensus: which pairs are rows, and which side is chosen, follow it.
    Mode ``all``: every pair the final ranking orders (ties give no row); ``best_vs_rest``: the final best group
    against every other response; ``best_vs_worst``: the best group against the worst group. A response the
    reviewer marked wrong-language is never chosen. ``min_agreement`` does not apply (the reviewer settled the
    disagreement); ``votes_for``, ``votes_against`` and ``n_judgments`` still report the annotators' votes, so a
    row can show more votes against its choice than for it: that is the disagreement that was adjudicated.

Weights
    ``pair_weight`` is a vote margin in which each annotator counts with their reliability r in [0, 1] (the
    competence estimate, annotation/competence.py): (Σ_for r − Σ_against r) / (Σ_for r + Σ_against r + Σ_tied r),
    clipped to [0, 1]. With every r = 1 it is the margin of the plain votes; rows of adjudicated items weigh 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from annotation.export.pairs import ItemJudgment, Preference, consensus_order, pairwise_votes


def adjudicated_pairs(response_ids: Sequence[int], final_ranks: Mapping[int, int], wrong_language: Sequence[int],
                      judgments: Sequence[ItemJudgment], *, mode: str) -> list[Preference]:
    ids = sorted(response_ids)
    votes = pairwise_votes(judgments, ids) if judgments else {}
    ties = _ties(ids, judgments)
    barred = set(wrong_language)
    levels = sorted({final_ranks[r] for r in ids})
    if mode == "all":
        candidates = [(a, b) for a in ids for b in ids if final_ranks[a] < final_ranks[b]]
    else:
        best = next((level for level in levels if any(final_ranks[r] == level and r not in barred for r in ids)),
                    None)
        if best is None:
            return []
        chosen = [r for r in ids if final_ranks[r] == best and r not in barred]
        rest = [r for r in ids if r not in chosen and final_ranks[r] != best]
        if mode == "best_vs_worst" and rest:
            worst = max(final_ranks[r] for r in rest)
            rest = [r for r in rest if final_ranks[r] == worst]
        candidates = [(a, b) for a in chosen for b in rest]
    preferences = []
    for a, b in sorted(candidates, key=lambda pair: (final_ranks[pair[0]], final_ranks[pair[1]], pair)):
        if a in barred:
            continue
        if not votes:
            wins_a = wins_b = 0
        elif a < b:
            wins_a, wins_b = votes[(a, b)]
        else:
            wins_b, wins_a = votes[(b, a)]
        preferences.append(Preference(a, b, wins_a, wins_b, len(judgments), ties.get(frozenset((a, b)), 0)))
    return preferences


def adjudicated_best(response_ids: Sequence[int], final_ranks: Mapping[int, int], wrong_language: Sequence[int],
                     judgments: Sequence[ItemJudgment]) -> int | None:
    """The SFT target of an adjudicated item: its final best response not marked wrong-language; among several
    tied best, the one the annotators' consensus puts first (never the lower id by itself)."""
    allowed = [r for r in sorted(response_ids) if r not in set(wrong_language)]
    if not allowed:
        return None
    best = min(final_ranks[r] for r in allowed)
    tied = [r for r in allowed if final_ranks[r] == best]
    if len(tied) == 1 or not judgments:
        return tied[0]
    order = consensus_order(sorted(response_ids), judgments)
    return next(r for r in order if r in tied)


def pair_weight(chosen: int, rejected: int, judgments: Sequence[ItemJudgment],
                reliability: Mapping[int, float]) -> float:
    """Reliability-weighted vote margin of a pair, in [0, 1]; an annotator without an estimate counts as 1."""
    for_, against, tied = 0.0, 0.0, 0.0
    for judgment in judgments:
        rank_a, rank_b = judgment.ranks.get(chosen), judgment.ranks.get(rejected)
        if rank_a is None or rank_b is None:
            continue
        weight = reliability.get(judgment.annotator_id, 1.0)
        if rank_a < rank_b:
            for_ += weight
        elif rank_b < rank_a:
            against += weight
        else:
            tied += weight
    total = for_ + against + tied
    return round(min(max((for_ - against) / total, 0.0), 1.0), 6) if total else 0.0


def _ties(ids: list[int], judgments: Sequence[ItemJudgment]) -> dict[frozenset, int]:
    ties: dict[frozenset, int] = {}
    for judgment in judgments:
        for position, a in enumerate(ids):
            for b in ids[position + 1:]:
                rank_a, rank_b = judgment.ranks.get(a), judgment.ranks.get(b)
                if rank_a is not None and rank_a == rank_b:
                    ties[frozenset((a, b))] = ties.get(frozenset((a, b)), 0) + 1
    return ties
