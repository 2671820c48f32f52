"""Preference pairs from ranked judgments: the pure core of the export (no Django here).

An *item* has 2–8 responses. Each judgment ranks them (1 is best, equal ranks are ties) and may flag some as
``wrong_language`` (off-target output). From one item's judgments this module derives DPO preference pairs.

Votes
    For responses i and j, ``wins_i`` is the number of judgments that rank i strictly above j; a tie counts for
    neither side, and a judgment that left i or j unranked does not vote on the pair.

Consensus order: Borda, not Bradley–Terry
    An item gets 3–5 judgments. Bradley–Terry fits one strength per response by maximum likelihood; with so few
    comparisons the fit often has no finite optimum (a response that wins every comparison has strength +inf), so
    it needs a prior whose strength changes the order, and an iterative solver with a tolerance. Borda is a
    closed-form count that a reviewer can check by hand, cannot fail to converge and is exactly reproducible.
    With a tie worth half a point (mid-ranks), the Borda score of i over the judgments that ranked all n responses
    is ``sum(n - midrank_i) = const + 1/2 * net_i`` with ``net_i = sum_j (wins_i - wins_j)``, so we order by
    ``net_i``: the same order, and still sound when a judgment left a response unranked.
    Ties in ``net`` are broken, in this order, by
      1. pairwise majority inside the tie: members beaten by majority minus members lost to (for a two-way tie
         this is the head-to-head result);
      2. fewer ``wrong_language`` flags;
      3. lower response id, so the order never depends on input order.

Which pairs are kept (``derive_pairs``)
    A pair is emitted as (chosen, rejected) only when ``votes_for > votes_against`` and its *margin*
    ``(votes_for - votes_against) / (votes_for + votes_against + votes_tied)`` — a number in [0, 1] — is at least
    ``min_agreement``. ``votes_tied`` counts the judgments that ranked both responses equal: they do not agree
    with the choice, so one vote for, none against and two ties is a margin of 1/3, not unanimity. A response
    flagged ``wrong_language`` by more than half of the item's judgments is never chosen; a pair that would choose
    it is dropped, it is never turned around against the votes.

Ties are never broken by response id into a pair
    In ``best_vs_rest`` and ``best_vs_worst`` the *best* (and the *worst*) is a group: every response that ties
    with it on net votes, head-to-head majority and flag count. The id only orders rows; it never decides which
    response becomes ``chosen`` or ``rejected``. (Before, of two responses ranked equally best the lower id was
    paired and the other left out, so relabelling the responses changed the export.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

PairMode = Literal["all", "best_vs_rest", "best_vs_worst"]
PAIR_MODES: tuple[str, ...] = ("all", "best_vs_rest", "best_vs_worst")
WRONG_LANGUAGE = "wrong_language"


@dataclass(frozen=True, slots=True)
class ItemJudgment:
    """One annotator's ranking of one item's responses: response id -> rank (1 best, ties allowed)."""

    annotator_id: int
    ranks: Mapping[int, int]
    flags: Mapping[int, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, annotator_id: int, ranks: Mapping[str, int], flags: Mapping[str, Sequence[str]] | None):
        """From a stored judgment, whose JSON object keys are response ids as strings."""
        return cls(annotator_id, {int(key): rank for key, rank in ranks.items()},
                   {int(key): names for key, names in (flags or {}).items()})


@dataclass(frozen=True, slots=True)
class Preference:
    """One exported pair, with the votes behind it (``n_judgments`` is the item's judgment count)."""

    chosen: int
    rejected: int
    votes_for: int
    votes_against: int
    n_judgments: int
    votes_tied: int = 0  # judgments that ranked the two equal

    @property
    def margin(self) -> float:
        return (self.votes_for - self.votes_against) / (self.votes_for + self.votes_against + self.votes_tied)


def pairwise_votes(
    judgments: Iterable[ItemJudgment], response_ids: Sequence[int] | None = None
) -> dict[tuple[int, int], tuple[int, int]]:
    """Votes on every pair: ``{(i, j): (wins_i, wins_j)}``, i before j in ``response_ids``.

    Without ``response_ids`` the responses are every id any judgment ranked, in ascending order.
    """
    judgments = list(judgments)
    ids = list(response_ids) if response_ids is not None else sorted({r for j in judgments for r in j.ranks})
    _check_ids(ids)
    wins = _win_matrix(ids, judgments)
    n = len(ids)
    return {(ids[a], ids[b]): (wins[a][b], wins[b][a]) for a in range(n) for b in range(a + 1, n)}


def consensus_order(response_ids: Sequence[int], judgments: Sequence[ItemJudgment]) -> list[int]:
    """Response ids from consensus best to worst (Borda by net pairwise votes; tie-breaks in the module doc)."""
    ids = list(response_ids)
    _check_ids(ids)
    wins = _win_matrix(ids, judgments)
    return [ids[a] for a in _consensus_indices(ids, wins, _wrong_language_counts(ids, judgments))]


def consensus_best(response_ids: Sequence[int], judgments: Sequence[ItemJudgment]) -> int | None:
    """The best response in the consensus order that a majority did not flag ``wrong_language`` (the SFT target);
    None when there are no judgments or every response is so flagged."""
    ids = list(response_ids)
    _check_ids(ids)
    if not judgments or not ids:
        return None
    wins = _win_matrix(ids, judgments)
    flag_counts = _wrong_language_counts(ids, judgments)
    for index in _consensus_indices(ids, wins, flag_counts):
        if 2 * flag_counts[index] <= len(judgments):
            return ids[index]
    return None


def derive_pairs(
    response_ids: Sequence[int],
    judgments: Sequence[ItemJudgment],
    *,
    mode: PairMode,
    min_judgments: int,
    min_agreement: float = 0.0,
) -> list[Preference]:
    """Preference pairs of one item.

    mode
        ``all``: every pair of responses whose votes have a majority, chosen = the majority side.
        ``best_vs_rest``: the consensus best against each other response. ``best_vs_worst``: the consensus best
        against the consensus worst. In both, *best* is the highest response in the consensus order that is not
        flagged ``wrong_language`` by a majority (none such: no pairs), with every unflagged response tied with
        it (the worst likewise: a group), and a pair is kept only when the votes side with the best; a flagged
        response ranked above it is still a valid *rejected*.
    min_judgments
        Items with fewer judgments give no pairs (at least 1).
    min_agreement
        Least vote margin ``(votes_for - votes_against) / (votes_for + votes_against + votes_tied)``, in [0, 1]. A
        pair is kept when ``votes_for > votes_against`` and margin >= min_agreement; so 0.0 keeps any strict
        majority, 0.5 needs 3–1 (or 2–0 with no tie) or better, 1.0 needs every judgment that ranked both to
        prefer the chosen one (no vote against, no tie).

    Rows come in consensus order: by the chosen response's position, then the rejected one's.
    """
    _check_options(mode, min_judgments, min_agreement)
    ids = list(response_ids)
    _check_ids(ids)
    n_judgments = len(judgments)
    if n_judgments < min_judgments or len(ids) < 2:
        return []
    wins, ties = _vote_matrices(ids, judgments)
    flag_counts = _wrong_language_counts(ids, judgments)
    keys = _consensus_keys(ids, wins, flag_counts)
    order = sorted(range(len(ids)), key=lambda a: (*keys[a], ids[a]))
    # "Majority" is of all the item's judgments: 2 of 3, 3 of 4 or 5; 2 of 4 is not enough.
    barred = {a for a in range(len(ids)) if 2 * flag_counts[a] > n_judgments}
    candidates = _candidate_pairs(order, keys, barred, wins, mode)
    preferences = []
    for chosen, rejected in candidates:
        votes_for, votes_against = wins[chosen][rejected], wins[rejected][chosen]
        if chosen in barred or votes_for <= votes_against:
            continue
        votes_tied = ties[chosen][rejected] if chosen < rejected else ties[rejected][chosen]
        if (votes_for - votes_against) / (votes_for + votes_against + votes_tied) < min_agreement:
            continue
        preferences.append(Preference(ids[chosen], ids[rejected], votes_for, votes_against, n_judgments,
                                      votes_tied))
    return preferences


def _candidate_pairs(order: list[int], keys: list[tuple[int, int, int]], barred: set[int], wins: list[list[int]],
                     mode: str) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs to test, in output order; ``derive_pairs`` applies the vote rules.

    The best and the worst are groups of responses with equal consensus keys (everything but the id), so that
    which response is paired never depends on its id.
    """
    if mode == "all":
        pairs = []
        for p, a in enumerate(order):
            for b in order[p + 1 :]:
                # The majority side is chosen even when it sits lower in the consensus order.
                pairs.append((b, a) if wins[b][a] > wins[a][b] else (a, b))
        position = {a: p for p, a in enumerate(order)}
        # Only needed when the votes turned a pair around; sorting 28 pairs at most is cheap either way.
        pairs.sort(key=lambda pair: (position[pair[0]], position[pair[1]]))
        return pairs
    best = next((a for a in order if a not in barred), None)
    if best is None:
        return []
    bests = [a for a in order if a not in barred and keys[a] == keys[best]]
    rest = [a for a in order if a not in bests]
    if mode == "best_vs_worst":
        rest = [a for a in rest if keys[a] == keys[rest[-1]]] if rest else []
    return [(chosen, rejected) for chosen in bests for rejected in rest]


def _win_matrix(ids: list[int], judgments: Iterable[ItemJudgment]) -> list[list[int]]:
    """``wins[a][b]``: judgments ranking ids[a] strictly above ids[b]."""
    return _vote_matrices(ids, judgments)[0]


def _vote_matrices(ids: list[int], judgments: Iterable[ItemJudgment]) -> tuple[list[list[int]], list[list[int]]]:
    """``wins[a][b]``: judgments ranking ids[a] strictly above ids[b]; ``ties[a][b]`` (a < b only): judgments
    ranking the two equal.

    The hot path of the export (250k items × 4 judgments × 6 pairs): plain loops over precomputed index pairs,
    no per-item numpy. It also catches ranks of unknown responses, at no extra cost.
    """
    n = len(ids)
    wins = [[0] * n for _ in range(n)]
    ties = [[0] * n for _ in range(n)]
    all_pairs = _index_pairs(n)
    for judgment in judgments:
        ranks = judgment.ranks
        rank = [ranks.get(r) for r in ids]
        n_ranked = n - rank.count(None)
        if n_ranked != len(ranks):
            _raise_unknown_ids(ids, judgment)
        pairs: Sequence[tuple[int, int]] = all_pairs
        if n_ranked < n:
            pairs = [(a, b) for a, b in all_pairs if rank[a] is not None and rank[b] is not None]
        for a, b in pairs:
            rank_a, rank_b = rank[a], rank[b]
            # Both are ranks here (the pairs with an unranked side were filtered out above); no cast in this loop.
            if rank_a < rank_b:  # type: ignore[operator]
                wins[a][b] += 1
            elif rank_b < rank_a:  # type: ignore[operator]
                wins[b][a] += 1
            else:
                ties[a][b] += 1
    return wins, ties


@cache
def _index_pairs(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((a, b) for a in range(n) for b in range(a + 1, n))


def _wrong_language_counts(ids: list[int], judgments: Iterable[ItemJudgment]) -> list[int]:
    counts = [0] * len(ids)
    for judgment in judgments:
        if not judgment.flags:
            continue
        for a, r in enumerate(ids):
            if WRONG_LANGUAGE in judgment.flags.get(r, ()):
                counts[a] += 1
    return counts


def _consensus_indices(ids: list[int], wins: list[list[int]], flag_counts: list[int]) -> list[int]:
    """Indices into ``ids`` from best to worst: net votes, then majority inside the tie, flags, id."""
    keys = _consensus_keys(ids, wins, flag_counts)
    return sorted(range(len(ids)), key=lambda a: (*keys[a], ids[a]))


def _consensus_keys(ids: list[int], wins: list[list[int]], flag_counts: list[int]) -> list[tuple[int, int, int]]:
    """Each response's place in the consensus without the id (smaller is better): responses with equal keys are
    tied, and only the order of rows may then depend on their ids."""
    n = len(ids)
    # net_a = votes won - votes lost = row sum - column sum of the win matrix.
    lost = [sum(column) for column in zip(*wins, strict=True)]
    net = [sum(row) - lost[a] for a, row in enumerate(wins)]
    within_tie = [0] * n
    if len(set(net)) < n:
        for a in range(n):
            for b in range(n):
                if b != a and net[b] == net[a]:
                    # +1 for a tied rival beaten by majority, -1 for one lost to, 0 for an even split.
                    within_tie[a] += (wins[a][b] > wins[b][a]) - (wins[a][b] < wins[b][a])
    return [(-net[a], -within_tie[a], flag_counts[a]) for a in range(n)]


def _check_options(mode: str, min_judgments: int, min_agreement: float) -> None:
    if mode not in PAIR_MODES:
        raise ValueError(f"Unknown pair mode {mode!r}; use one of {', '.join(PAIR_MODES)}.")
    if isinstance(min_judgments, bool) or not isinstance(min_judgments, int) or min_judgments < 1:
        raise ValueError(f"min_judgments must be a whole number of at least 1, got {min_judgments!r}.")
    # `not (0 <= x <= 1)` also rejects NaN, which every comparison answers False.
    if isinstance(min_agreement, bool) or not isinstance(min_agreement, int | float) or not 0 <= min_agreement <= 1:
        raise ValueError(
            f"min_agreement is a vote margin between 0 and 1 (0.5 needs 3 votes to 1), got {min_agreement!r}."
        )


def _check_ids(ids: list[int]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"Response ids must be unique, got {ids}.")


def _raise_unknown_ids(ids: list[int], judgment: ItemJudgment) -> None:
    unknown = sorted(judgment.ranks.keys() - set(ids))
    raise ValueError(
        f"Judgment by annotator {judgment.annotator_id} ranks response(s) {unknown} "
        f"that are not among the item's responses {ids}."
    )
