"""The edit distance of post-edits (translation/edit_distance.py): pure functions against hand-checked values, and the
bit-parallel Levenshtein against the textbook dynamic programme on random strings."""

from __future__ import annotations

import random

import pytest

from translation.edit_distance import fields_edit_distance, levenshtein, mean_edit_distance, normalised_edit_distance


def textbook(before: str, after: str) -> int:
    previous = list(range(len(after) + 1))
    for row, left in enumerate(before, start=1):
        current = [row]
        for column, right in enumerate(after, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (left != right)))
        previous = current
    return previous[-1]


@pytest.mark.parametrize(("before", "after", "distance"), [
    ("", "", 0),
    ("abc", "abc", 0),
    ("", "abc", 3),
    ("abc", "", 3),
    ("kitten", "sitting", 3),  # k→s, e→i, +g
    ("flaw", "lawn", 2),  # -f, +n
    ("abcdef", "azcdef", 1),
    ("intention", "execution", 5),
    ("ab", "ba", 2),  # no transpositions in Levenshtein
    ("السماء زرقاء", "السماء زرقاء جدا", 4),  # " جدا" appended
    ("天空是蓝色的", "天空是蓝的", 1),
    ("😀a", "a😀", 2),  # by code point, not by UTF-16 unit
])
def test_levenshtein_of_hand_checked_pairs(before, after, distance):
    assert levenshtein(before, after) == distance
    assert levenshtein(after, before) == distance


def test_levenshtein_agrees_with_the_textbook_on_random_strings():
    rng = random.Random(14)
    for _ in range(2000):
        before = "".join(rng.choice("abcدé ") for _ in range(rng.randint(0, 40)))
        after = "".join(rng.choice("abcدé ") for _ in range(rng.randint(0, 40)))
        assert levenshtein(before, after) == textbook(before, after), (before, after)


def test_levenshtein_of_long_texts_past_one_machine_word():
    assert levenshtein("a" * 20_000, "b" * 20_000) == 20_000
    assert levenshtein("x" * 5000 + "a" * 100, "x" * 5000 + "b" * 100) == 100
    assert levenshtein("ab" * 300, "ba" * 300) == 2  # one character moved from the end to the front


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("", "", 0.0),
    ("abc", "abc", 0.0),
    ("kitten", "sitting", 0.4286),  # 3 / 7
    ("abcd", "", 1.0),
    ("abcd", "wxyz", 1.0),
])
def test_normalised_by_the_longer_text(before, after, expected):
    assert normalised_edit_distance(before, after) == expected


def test_fields_are_joined_in_order_before_measuring():
    # "aaaa\nbbbb" against "aaaa\nbbbc": 1 in 9.
    assert fields_edit_distance(["aaaa", "bbbb"], ["aaaa", "bbbc"]) == 0.1111
    assert fields_edit_distance(["same"], ["same"]) == 0.0


def test_the_mean_leaves_unmeasured_ones_out():
    assert mean_edit_distance([0.0, 0.5, None, 0.25]) == 0.25
    assert mean_edit_distance([None]) is None
    assert mean_edit_distance([]) is None
