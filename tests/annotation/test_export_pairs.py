"""Pair derivation: hand-worked items, exact expected pairs."""

import math

import pytest

from annotation.export.pairs import ItemJudgment, Preference, consensus_order, derive_pairs, pairwise_votes


def judge(annotator_id, ranks, wrong_language=()):
    return ItemJudgment(annotator_id=annotator_id, ranks=ranks, flags={r: ["wrong_language"] for r in wrong_language})


def pairs(response_ids, judgments, mode="all", min_judgments=1, min_agreement=0.0):
    return derive_pairs(response_ids, judgments, mode=mode, min_judgments=min_judgments, min_agreement=min_agreement)


# Four responses, three annotators. Votes (wins of the first, of the second):
#   (1,2): A, B for 1; C for 2 -> (2, 1)      (1,3): (3, 0)   (1,4): (3, 0)
#   (2,3): A, C for 2; B for 3 -> (2, 1)      (2,4): (3, 0)   (3,4): (3, 0)
# Net votes: 1: +1+3+3 = 7, 2: -1+1+3 = 3, 3: -3-1+3 = -1, 4: -9 -> consensus 1, 2, 3, 4.
FOUR = [1, 2, 3, 4]
FOUR_JUDGMENTS = [
    judge(101, {1: 1, 2: 2, 3: 3, 4: 4}),
    judge(102, {1: 1, 2: 3, 3: 2, 4: 4}),
    judge(103, {1: 2, 2: 1, 3: 3, 4: 4}),
]


def test_it_counts_pairwise_votes():
    assert pairwise_votes(FOUR_JUDGMENTS) == {
        (1, 2): (2, 1),
        (1, 3): (3, 0),
        (1, 4): (3, 0),
        (2, 3): (2, 1),
        (2, 4): (3, 0),
        (3, 4): (3, 0),
    }


def test_it_keys_votes_in_the_given_response_order():
    votes = pairwise_votes(FOUR_JUDGMENTS, [4, 3, 2, 1])
    assert list(votes)[:3] == [(4, 3), (4, 2), (4, 1)]
    assert votes[(4, 1)] == (0, 3)


def test_a_judgment_that_left_a_response_unranked_does_not_vote_on_it():
    votes = pairwise_votes([judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {1: 2, 2: 1})], [1, 2, 3])
    assert votes == {(1, 2): (1, 1), (1, 3): (1, 0), (2, 3): (1, 0)}


def test_a_two_to_one_majority_is_emitted_with_its_votes():
    judgments = [judge(1, {10: 1, 20: 2}), judge(2, {10: 1, 20: 2}), judge(3, {10: 2, 20: 1})]
    assert pairs([10, 20], judgments) == [Preference(10, 20, votes_for=2, votes_against=1, n_judgments=3)]


def test_the_majority_side_is_chosen_whatever_the_input_order():
    judgments = [judge(1, {10: 2, 20: 1}), judge(2, {10: 2, 20: 1}), judge(3, {10: 1, 20: 2})]
    assert pairs([10, 20], judgments) == [Preference(20, 10, 2, 1, 3)]


def test_a_tie_counts_for_neither_side():
    # 1 for 10, 0 for 20, two ties: 10 wins 1-0, but the ties do not agree: margin (1 - 0) / (1 + 0 + 2) = 1/3.
    judgments = [judge(1, {10: 1, 20: 2}), judge(2, {10: 1, 20: 1}), judge(3, {10: 1, 20: 1})]
    assert pairs([10, 20], judgments) == [Preference(10, 20, 1, 0, 3, votes_tied=2)]
    assert pairs([10, 20], judgments)[0].margin == 1 / 3


def test_a_one_one_split_with_a_tie_is_not_emitted():
    judgments = [judge(1, {10: 1, 20: 2}), judge(2, {10: 2, 20: 1}), judge(3, {10: 1, 20: 1})]
    assert pairwise_votes(judgments) == {(10, 20): (1, 1)}
    assert pairs([10, 20], judgments) == []


def test_an_all_tied_item_gives_no_pairs():
    judgments = [judge(1, {10: 1, 20: 1}), judge(2, {10: 1, 20: 1})]
    assert pairs([10, 20], judgments) == []


def test_a_unanimous_item_gives_every_pair_three_to_nothing():
    judgments = [judge(a, {7: 1, 8: 2, 9: 3}) for a in (1, 2, 3)]
    assert pairs([9, 8, 7], judgments) == [
        Preference(7, 8, 3, 0, 3),
        Preference(7, 9, 3, 0, 3),
        Preference(8, 9, 3, 0, 3),
    ]


def test_mode_all_gives_every_majority_pair_in_consensus_order():
    assert pairs(FOUR, FOUR_JUDGMENTS) == [
        Preference(1, 2, 2, 1, 3),
        Preference(1, 3, 3, 0, 3),
        Preference(1, 4, 3, 0, 3),
        Preference(2, 3, 2, 1, 3),
        Preference(2, 4, 3, 0, 3),
        Preference(3, 4, 3, 0, 3),
    ]


def test_mode_best_vs_rest_pairs_the_best_with_each_other_response():
    assert pairs(FOUR, FOUR_JUDGMENTS, mode="best_vs_rest") == [
        Preference(1, 2, 2, 1, 3),
        Preference(1, 3, 3, 0, 3),
        Preference(1, 4, 3, 0, 3),
    ]


def test_mode_best_vs_worst_gives_one_pair():
    assert pairs(FOUR, FOUR_JUDGMENTS, mode="best_vs_worst") == [Preference(1, 4, 3, 0, 3)]


# Borda best is not the head-to-head winner. Three annotators rank 1 > 2 > 3, two rank 2 > 3 > 1:
#   (1,2): 3-2, (1,3): 3-2, (2,3): 5-0. Net 1: +1 +1 = 2, 2: -1 +5 = 4, 3: -6 -> consensus 2, 1, 3.
CONDORCET = [judge(a, {1: 1, 2: 2, 3: 3}) for a in (1, 2, 3)] + [judge(a, {2: 1, 3: 2, 1: 3}) for a in (4, 5)]


def test_best_modes_drop_a_pair_whose_votes_go_against_the_best():
    assert consensus_order([1, 2, 3], CONDORCET) == [2, 1, 3]
    # (2 over 1) has 2 votes to 3: not turned into (1 over 2), just dropped.
    assert pairs([1, 2, 3], CONDORCET, mode="best_vs_rest") == [Preference(2, 3, 5, 0, 5)]
    assert pairs([1, 2, 3], CONDORCET, mode="best_vs_worst") == [Preference(2, 3, 5, 0, 5)]


def test_mode_all_orders_rows_by_the_chosen_response_consensus_position():
    # Chosen 2 (position 0) first; then chosen 1 (position 1) against 2 (position 0) and 3 (position 2).
    assert pairs([1, 2, 3], CONDORCET) == [
        Preference(2, 3, 5, 0, 5),
        Preference(1, 2, 3, 2, 5),
        Preference(1, 3, 3, 2, 5),
    ]


def test_min_judgments_filters_items_with_too_few_judgments():
    assert pairs(FOUR, FOUR_JUDGMENTS, mode="best_vs_worst", min_judgments=4) == []
    assert pairs(FOUR, FOUR_JUDGMENTS, mode="best_vs_worst", min_judgments=3) == [Preference(1, 4, 3, 0, 3)]


def test_min_agreement_drops_pairs_below_the_margin():
    # Margins: (1,2) and (2,3) are (2-1)/3 = 1/3; the others (3-0)/3 = 1.
    kept = pairs(FOUR, FOUR_JUDGMENTS, min_agreement=0.5)
    assert [(p.chosen, p.rejected) for p in kept] == [(1, 3), (1, 4), (2, 4), (3, 4)]


def test_a_margin_exactly_equal_to_min_agreement_passes():
    # 3 votes to 1 with 4 judgments: (3 - 1) / (3 + 1) = 0.5 exactly.
    judgments = [judge(a, {1: 1, 2: 2}) for a in (1, 2, 3)] + [judge(4, {1: 2, 2: 1})]
    assert pairs([1, 2], judgments, min_agreement=0.5) == [Preference(1, 2, 3, 1, 4)]
    assert pairs([1, 2], judgments, min_agreement=math.nextafter(0.5, 1)) == []
    # 2 to 1: margin 1/3, and the same float 1/3 as a threshold keeps it.
    assert pairs(FOUR, FOUR_JUDGMENTS, min_agreement=1 / 3)[0] == Preference(1, 2, 2, 1, 3)


def test_min_agreement_one_needs_no_vote_against():
    kept = pairs(FOUR, FOUR_JUDGMENTS, min_agreement=1.0)
    assert all(p.votes_against == 0 for p in kept) and len(kept) == 4


# Wrong language: 1 is preferred 2-1 over 2 and over 3, but two of three judgments flag it.
# Net: 1: +1 +1 = 2, 2: -1 +3 = 2, 3: -1 -3 = -4; the 1-2 tie goes to 1 (head-to-head 2-1). Consensus 1, 2, 3.
OFF_TARGET = [
    judge(1, {1: 1, 2: 2, 3: 3}),
    judge(2, {2: 1, 3: 2, 1: 3}, wrong_language=[1]),
    judge(3, {1: 1, 2: 2, 3: 3}, wrong_language=[1]),
]


def test_a_response_flagged_by_a_majority_is_never_chosen_in_mode_all():
    assert consensus_order([1, 2, 3], OFF_TARGET) == [1, 2, 3]
    assert pairs([1, 2, 3], OFF_TARGET) == [Preference(2, 3, 3, 0, 3)]


@pytest.mark.parametrize("mode", ["best_vs_rest", "best_vs_worst"])
def test_best_modes_take_the_best_response_not_flagged_by_a_majority(mode):
    # Best is 2; (2,1) has votes 1-2 against 2, so it is dropped rather than turned around.
    assert pairs([1, 2, 3], OFF_TARGET, mode=mode) == [Preference(2, 3, 3, 0, 3)]


def test_a_flagged_response_is_rejected_when_the_votes_say_so():
    judgments = [
        judge(1, {1: 1, 2: 2}, wrong_language=[2]),
        judge(2, {1: 1, 2: 2}, wrong_language=[2]),
        judge(3, {1: 2, 2: 1}),
    ]
    assert pairs([1, 2], judgments, mode="best_vs_rest") == [Preference(1, 2, 2, 1, 3)]


def test_half_of_the_judgments_is_not_a_majority_of_flags():
    judgments = [
        judge(1, {1: 1, 2: 2}, wrong_language=[1]),
        judge(2, {1: 1, 2: 2}, wrong_language=[1]),
        judge(3, {1: 1, 2: 2}),
        judge(4, {1: 1, 2: 2}),
    ]
    assert pairs([1, 2], judgments) == [Preference(1, 2, 4, 0, 4)]


@pytest.mark.parametrize("mode", ["all", "best_vs_rest", "best_vs_worst"])
def test_an_item_with_every_response_flagged_gives_no_pairs(mode):
    judgments = [judge(a, {1: 1, 2: 2}, wrong_language=[1, 2]) for a in (1, 2, 3)]
    assert pairs([1, 2], judgments, mode=mode) == []


def test_consensus_ties_break_by_head_to_head_before_flags_and_id():
    # Same votes as OFF_TARGET with ids renamed 1 -> 9, 2 -> 4, 3 -> 6, and one flag (not a majority) on 9.
    # 9 and 4 tie on net votes (+2 each); 9 beats 4 head-to-head 2-1, so 9 leads despite its flag and larger id.
    judgments = [
        judge(1, {9: 1, 4: 2, 6: 3}, wrong_language=[9]),
        judge(2, {4: 1, 6: 2, 9: 3}),
        judge(3, {9: 1, 4: 2, 6: 3}),
    ]
    assert consensus_order([4, 6, 9], judgments) == [9, 4, 6]


def test_consensus_ties_break_by_fewer_flags_then_by_id():
    split = [judge(1, {5: 1, 7: 2}), judge(2, {7: 1, 5: 2})]
    assert consensus_order([7, 5], split) == [5, 7]
    assert consensus_order([5, 7], split[::-1]) == [5, 7]
    flagged = [judge(1, {5: 1, 7: 2}), judge(2, {7: 1, 5: 2}, wrong_language=[5])]
    assert consensus_order([5, 7], flagged) == [7, 5]


def test_three_way_tie_is_ordered_the_same_whatever_the_input_order():
    # A Condorcet cycle: 1>2>3, 2>3>1, 3>1>2. Every net vote is 0 and every response beats one rival and loses
    # to the other, so only the id decides.
    cycle = [judge(1, {1: 1, 2: 2, 3: 3}), judge(2, {2: 1, 3: 2, 1: 3}), judge(3, {3: 1, 1: 2, 2: 3})]
    assert consensus_order([3, 1, 2], cycle) == [1, 2, 3]
    assert consensus_order([2, 3, 1], cycle[::-1]) == [1, 2, 3]
    assert pairs([3, 2, 1], cycle) == [Preference(1, 2, 2, 1, 3), Preference(2, 3, 2, 1, 3), Preference(3, 1, 2, 1, 3)]


def test_preference_margin():
    assert Preference(1, 2, 3, 1, 4).margin == 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pairs"}, "Unknown pair mode 'pairs'"),
        ({"min_judgments": 0}, "min_judgments must be a whole number of at least 1"),
        ({"min_judgments": 2.0}, "min_judgments"),
        ({"min_judgments": True}, "min_judgments"),
        ({"min_agreement": 1.5}, "min_agreement is a vote margin between 0 and 1"),
        ({"min_agreement": -0.1}, "min_agreement"),
        ({"min_agreement": math.nan}, "min_agreement"),
    ],
)
def test_it_rejects_bad_options(options, message):
    arguments = {"mode": "all", "min_judgments": 1, "min_agreement": 0.0} | options
    with pytest.raises(ValueError, match=message):
        derive_pairs(FOUR, FOUR_JUDGMENTS, **arguments)


def test_it_rejects_bad_options_even_for_an_item_that_gives_no_pairs():
    with pytest.raises(ValueError, match="Unknown pair mode"):
        derive_pairs([1, 2], [], mode="best", min_judgments=1)


def test_it_rejects_duplicate_response_ids():
    with pytest.raises(ValueError, match=r"Response ids must be unique, got \[1, 1\]"):
        derive_pairs([1, 1], FOUR_JUDGMENTS, mode="all", min_judgments=1)


def test_it_rejects_a_judgment_that_ranks_an_unknown_response():
    with pytest.raises(ValueError, match=r"annotator 7 ranks response\(s\) \[99\]"):
        derive_pairs([1, 2], [judge(7, {1: 1, 2: 2, 99: 3})], mode="all", min_judgments=1)


def test_consensus_best_skips_a_majority_flagged_winner():
    from annotation.export.pairs import consensus_best

    judgments = [
        ItemJudgment(1, {10: 1, 20: 2, 30: 3}, {10: ["wrong_language"]}),
        ItemJudgment(2, {10: 1, 20: 3, 30: 2}, {10: ["wrong_language"]}),
        ItemJudgment(3, {10: 2, 20: 1, 30: 3}),
    ]
    assert consensus_best([10, 20, 30], judgments) == 20
    assert consensus_best([10, 20, 30], []) is None
    flagged_all = [ItemJudgment(1, {10: 1, 20: 2}, {10: ["wrong_language"], 20: ["wrong_language"]})]
    assert consensus_best([10, 20], flagged_all) is None


def test_fast_jsonl_encoding_matches_json_dumps():
    import json

    from annotation.export.writers import encode_rows

    shared = [{"role": "user", "content": 'Quote " backslash \\ newline \n tab \t ሰላም 你好 \u2028 emoji 😀'}]
    rows = [{"prompt": shared, "chosen": [{"role": "assistant", "content": "x"}], "item": "a/b", "votes_for": 3,
             "ratio": 0.5, "missing": None, "flag": True, "split": "train"},
            {"prompt": shared, "chosen": [], "item": "", "votes_for": 0, "ratio": 1e-9, "missing": None,
             "flag": False, "split": "test"}]
    assert encode_rows(rows) == [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
