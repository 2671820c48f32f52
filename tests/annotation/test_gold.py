"""Gold answers checked on hand-worked cases (annotation/gold.py), and the states they lead to."""

import pytest

from annotation.gold import Thresholds, gold_correct, qualification_passed, standing_state
from annotation.item_format import Limits, check_record
from tests.conftest import item_line

# Four responses at positions 0-3; ranks by position.
BEST_0 = {"best": [0], "wrong_language": [], "tolerance": 0}


@pytest.mark.parametrize("ranks, expected, why", [
    ({0: 1, 1: 2, 2: 3, 3: 4}, True, "the expected best is first"),
    ({0: 1, 1: 1, 2: 3, 3: 4}, True, "tied for first: nothing is ranked above it"),
    ({0: 2, 1: 1, 2: 3, 3: 4}, False, "one response above it, tolerance 0"),
    ({0: 4, 1: 3, 2: 2, 3: 1}, False, "ranked last"),
])
def test_best_with_no_tolerance(ranks, expected, why):
    assert gold_correct(BEST_0, ranks, {}) is expected, why


def test_tolerance_counts_the_responses_ranked_above():
    gold = {"best": [0], "wrong_language": [], "tolerance": 1}
    assert gold_correct(gold, {0: 2, 1: 1, 2: 3, 3: 4}, {})  # one above: within 1
    assert gold_correct(gold, {0: 2, 1: 1, 2: 1, 3: 4}, {}) is False  # two tied above it: 2 > 1
    assert gold_correct(gold, {0: 3, 1: 1, 2: 2, 3: 4}, {}) is False


def test_any_of_several_acceptable_best_responses_will_do():
    gold = {"best": [1, 2], "wrong_language": [], "tolerance": 0}
    assert gold_correct(gold, {0: 2, 1: 3, 2: 1, 3: 4}, {})
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {}) is False


def test_wrong_language_responses_must_be_flagged():
    gold = {"best": [], "wrong_language": [3], "tolerance": 0}
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {3: ["wrong_language"]})
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {3: ["garbled"]}) is False
    # Flags elsewhere are not held against the annotator.
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {2: ["wrong_language"], 3: ["wrong_language"]})


def test_both_parts_must_be_right():
    gold = {"best": [0], "wrong_language": [3], "tolerance": 0}
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {3: ["wrong_language"]})
    assert gold_correct(gold, {0: 1, 1: 2, 2: 3, 3: 4}, {}) is False
    assert gold_correct(gold, {0: 2, 1: 1, 2: 3, 3: 4}, {3: ["wrong_language"]}) is False


THRESHOLDS = Thresholds(min_seen=4, warn_below=0.7, exclude_below=0.5)


@pytest.mark.parametrize("seen, correct, current, expected", [
    (3, 0, "ok", "ok"),  # fewer than min_seen: nothing happens yet
    (4, 3, "ok", "ok"),  # 75 % ≥ 70 %
    (4, 2, "ok", "warned"),  # 50 %: below 70 %, not below 50 %
    (5, 2, "warned", "excluded"),  # 40 % < 50 %
    (6, 5, "warned", "ok"),  # a warned annotator who recovers is ok again
    (10, 10, "excluded", "excluded"),  # an exclusion is not undone by the record
])
def test_states_from_the_record(seen, correct, current, expected):
    assert standing_state(seen=seen, correct=correct, current=current, thresholds=THRESHOLDS)[0] == expected


def test_the_reason_gives_the_numbers():
    _state, reason = standing_state(seen=5, correct=2, current="warned", thresholds=THRESHOLDS)
    assert reason == "gold accuracy 40% (2 of 5) is below the exclusion threshold 50%"


def test_qualification_pass_mark():
    assert qualification_passed(answered=4, correct=3, pass_mark=0.75)
    assert not qualification_passed(answered=4, correct=2, pass_mark=0.75)
    assert not qualification_passed(answered=0, correct=0, pass_mark=0.0)


def check(value):
    return check_record(value, 7, Limits())


def test_the_item_format_takes_gold_and_qualification():
    record, errors = check({**item_line("g-1", n=4), "gold": {"best": [2], "wrong_language": 3, "tolerance": 1}})
    assert errors == []
    assert record.kind == "gold"
    assert record.gold == {"best": [2], "wrong_language": [3], "tolerance": 1}
    record, errors = check({**item_line("q-1"), "qualification": True, "gold": {"best": [0]}})
    assert (record.kind, errors) == ("qualification", [])


def test_gold_changes_the_content_hash_but_plain_items_keep_theirs():
    plain, _ = check(item_line("x-1"))
    gold, _ = check({**item_line("x-1"), "gold": {"best": [0]}})
    assert plain.content_hash() != gold.content_hash()
    # The hash of an item without gold is what it was before gold existed (re-imports stay "unchanged").
    assert plain.content_hash() == check(item_line("x-1"))[0].content_hash()


@pytest.mark.parametrize("gold, field, message", [
    ({"best": [3]}, "gold.best", "the item has no response 3: it has 3 responses, indices 0 to 2"),
    ({"best": [0], "wrong_language": [-1]}, "gold.wrong_language", "the item has no response -1"),
    ({"best": ["A"]}, "gold.best", "expected response indices"),
    ({}, "gold", "give best"),
    ({"best": [0], "wrong_language": [0]}, "gold", "cannot be both"),
    ({"best": [0], "tolerance": 2}, "gold.tolerance", "from 0 to 1"),
    ({"best": [0], "extra": 1}, "gold.extra", "unknown field"),
])
def test_bad_gold_is_named_with_its_line_and_field(gold, field, message):
    record, errors = check({**item_line("g-2"), "gold": gold})
    assert record is None
    assert any(e.line == 7 and e.field == field and message in e.message for e in errors), errors


def test_a_qualification_item_needs_its_answer():
    record, errors = check({**item_line("q-2"), "qualification": True})
    assert record is None and [(e.field, e.message[:8]) for e in errors] == [("gold", "required")]
