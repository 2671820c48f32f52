"""Agreement rules with ties (issue 12, point 8), hand-worked: a tie is a vote that does not agree with the choice,
and a tie between responses is never settled by their ids when pairs are made."""

from __future__ import annotations

import pytest

from annotation.export.pairs import ItemJudgment, Preference, derive_pairs


def judge(annotator_id, ranks, wrong_language=()):
    return ItemJudgment(annotator_id=annotator_id, ranks=ranks, flags={r: ["wrong_language"] for r in wrong_language})


def pairs(response_ids, judgments, mode="all", min_agreement=0.0):
    return derive_pairs(response_ids, judgments, mode=mode, min_judgments=1, min_agreement=min_agreement)


# --- min_agreement counts ties as votes that do not agree ------------------------------------------------------

# One annotator prefers 10, two rank 10 and 20 equal: votes 1-0, two ties.
# Before: margin (1 - 0) / (1 + 0) = 1.0, "unanimous". Now: (1 - 0) / (1 + 0 + 2) = 1/3.
ONE_FOR_TWO_TIED = [judge(1, {10: 1, 20: 2}), judge(2, {10: 1, 20: 1}), judge(3, {10: 1, 20: 1})]


def test_one_vote_and_two_ties_is_not_unanimous():
    assert pairs([10, 20], ONE_FOR_TWO_TIED, min_agreement=1.0) == []


def test_one_vote_and_two_ties_has_a_margin_of_one_third():
    assert pairs([10, 20], ONE_FOR_TWO_TIED, min_agreement=1 / 3) == [Preference(10, 20, 1, 0, 3, votes_tied=2)]
    assert pairs([10, 20], ONE_FOR_TWO_TIED, min_agreement=0.34) == []


def test_three_votes_and_one_tie_clear_a_half_but_not_unanimity():
    # (3 - 0) / (3 + 0 + 1) = 0.75.
    judgments = [judge(1, {1: 1, 2: 2}), judge(2, {1: 1, 2: 2}), judge(3, {1: 1, 2: 2}), judge(4, {1: 1, 2: 1})]
    [kept] = pairs([1, 2], judgments, min_agreement=0.75)
    assert (kept.votes_for, kept.votes_against, kept.votes_tied, kept.margin) == (3, 0, 1, 0.75)
    assert pairs([1, 2], judgments, min_agreement=0.76) == []
    assert pairs([1, 2], judgments, min_agreement=1.0) == []


def test_unanimity_still_passes_one():
    judgments = [judge(1, {1: 1, 2: 2}), judge(2, {1: 1, 2: 2}), judge(3, {1: 1, 2: 2})]
    assert pairs([1, 2], judgments, min_agreement=1.0) == [Preference(1, 2, 3, 0, 3)]


def test_a_judgment_that_left_one_side_unranked_is_not_a_tie():
    # Judgment 2 ranked only response 1: it does not vote on the pair at all, so the margin stays (2 - 0) / 2.
    judgments = [judge(1, {1: 1, 2: 2}), judge(2, {1: 1}), judge(3, {1: 1, 2: 2})]
    assert pairs([1, 2], judgments, min_agreement=1.0) == [Preference(1, 2, 2, 0, 3, votes_tied=0)]


# --- tied responses never become a pair by response id ---------------------------------------------------------

# One judgment ranks A first and B, C equal second. B and C are tied on every rule but the id.
# Before: best_vs_worst paired A with the higher id of B and C only (the "worst" by id), so relabelling the
# responses changed which one was rejected. Now: A against both.
def test_best_vs_worst_pairs_the_best_with_every_tied_worst():
    judgments = [judge(1, {1: 1, 2: 2, 3: 2})]
    assert pairs([1, 2, 3], judgments, mode="best_vs_worst") == [Preference(1, 2, 1, 0, 1), Preference(1, 3, 1, 0, 1)]


# Two judgments rank A and B equal first, C last. Before: best_vs_rest took A (lower id) as the best and left B
# unpaired: A > C only. Now both tied bests are paired with C, and A-B (a tie) is never a pair.
def test_best_vs_rest_pairs_every_tied_best_and_never_the_tie_itself():
    judgments = [judge(1, {1: 1, 2: 1, 3: 2}), judge(2, {1: 1, 2: 1, 3: 2})]
    assert pairs([1, 2, 3], judgments, mode="best_vs_rest") == [Preference(1, 3, 2, 0, 2), Preference(2, 3, 2, 0, 2)]
    assert pairs([1, 2, 3], judgments, mode="best_vs_worst") == [Preference(1, 3, 2, 0, 2), Preference(2, 3, 2, 0, 2)]


@pytest.mark.parametrize("mode", ["all", "best_vs_rest", "best_vs_worst"])
@pytest.mark.parametrize("ranks", [
    {"a": 1, "b": 2, "c": 2},
    {"a": 1, "b": 1, "c": 2},
    {"a": 1, "b": 1, "c": 1},
    {"a": 2, "b": 1, "c": 2},
])
def test_relabelling_the_responses_never_changes_the_pairs(mode, ranks):
    """The same judgment under two id assignments gives the same pairs, by response, whatever the ids."""
    exported = []
    for labels in ({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}, {"a": 2, "b": 3, "c": 1}):
        judgments = [judge(1, {labels[name]: rank for name, rank in ranks.items()})]
        by_id = {number: name for name, number in labels.items()}
        found = pairs(sorted(by_id), judgments, mode=mode)
        exported.append(sorted((by_id[p.chosen], by_id[p.rejected]) for p in found))
    assert exported[0] == exported[1] == exported[2]


def test_a_three_way_cycle_has_no_single_best():
    # A > B, B > C, C > A, each 2-1: net votes, head-to-head and flags tie all three. Before: A (lowest id) was
    # "the best" and A > B was exported; now there is no best to pair in the best modes. `all` keeps each majority.
    judgments = [judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {2: 1, 3: 2, 1: 3}), judge(3, {3: 1, 1: 2, 2: 3})]
    assert pairs([1, 2, 3], judgments, mode="best_vs_rest") == []
    assert pairs([1, 2, 3], judgments, mode="best_vs_worst") == []
    assert {(p.chosen, p.rejected) for p in pairs([1, 2, 3], judgments, mode="all")} == {(1, 2), (2, 3), (3, 1)}


def test_fewer_wrong_language_flags_still_separate_a_tie():
    # A and B tie on votes; B was flagged wrong-language once (not a majority of 2, so it may be chosen): the flag
    # count, not the id, makes A the best.
    judgments = [judge(1, {1: 1, 2: 1, 3: 2}), judge(2, {1: 1, 2: 1, 3: 2}, wrong_language=[2])]
    assert pairs([1, 2, 3], judgments, mode="best_vs_rest") == [Preference(1, 3, 2, 0, 2)]
    assert pairs([2, 1, 3], judgments, mode="best_vs_rest") == [Preference(1, 3, 2, 0, 2)]
