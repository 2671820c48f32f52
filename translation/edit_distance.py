"""Character edit distance between a machine translation and its post-edit: pure functions, strings in, numbers out.

`levenshtein` counts the fewest single-character insertions, deletions and substitutions that turn one text into
the other. It uses the bit-parallel algorithm of Myers (1999) in Hyyrö's formulation for Levenshtein distance: each
character of the longer text updates the whole column of the dynamic-programming table at once, as a few
operations on Python integers of len(shorter) bits. Two 20,000-character fields are 20,000 steps on 20,000-bit
integers instead of 400 million table cells; the common prefix and suffix (most of a light post-edit) are cut first.

`normalised_edit_distance` divides by the longer text's length: 0.0 for identical texts, 1.0 when nothing could be
kept (the TER-like "how much had to change" that post-editing studies report per language).
"""

from __future__ import annotations

from collections.abc import Iterable

FIELD_SEPARATOR = "\n"


def levenshtein(before: str, after: str) -> int:
    """The Levenshtein distance between two strings (by code point)."""
    if before == after:
        return 0
    start = 0
    shortest = min(len(before), len(after))
    while start < shortest and before[start] == after[start]:
        start += 1
    end = 0
    while end < shortest - start and before[-1 - end] == after[-1 - end]:
        end += 1
    before, after = before[start:len(before) - end], after[start:len(after) - end]
    text, pattern = (before, after) if len(before) >= len(after) else (after, before)
    if not pattern:
        return len(text)
    length = len(pattern)
    # Bit i of equal[c] is set when pattern[i] == c.
    equal: dict[str, int] = {}
    for index, character in enumerate(pattern):
        equal[character] = equal.get(character, 0) | (1 << index)
    mask = (1 << length) - 1
    last = 1 << (length - 1)
    plus, minus, score = mask, 0, length  # vertical +1 / -1 deltas of the current column, and its last cell
    for character in text:
        eq = equal.get(character, 0)
        vertical = eq | minus
        horizontal = (((eq & plus) + plus) ^ plus) | eq
        up = minus | ~(horizontal | plus)
        down = plus & horizontal
        if up & last:
            score += 1
        elif down & last:
            score -= 1
        up = ((up << 1) | 1) & mask
        down = (down << 1) & mask
        plus = (down | ~(vertical | up)) & mask
        minus = up & vertical
    return score


def normalised_edit_distance(before: str, after: str) -> float:
    """levenshtein / the longer length, rounded to 4 places; 0.0 for two empty texts."""
    longest = max(len(before), len(after))
    return round(levenshtein(before, after) / longest, 4) if longest else 0.0


def fields_edit_distance(before: Iterable[str], after: Iterable[str]) -> float:
    """The normalised distance over a translation's fields, each list joined in the same order."""
    return normalised_edit_distance(FIELD_SEPARATOR.join(before), FIELD_SEPARATOR.join(after))


def mean_edit_distance(distances: Iterable[float | None]) -> float | None:
    """The mean of the measured distances (None ones, as for unusable translations, left out); None when none."""
    measured = [distance for distance in distances if distance is not None]
    return round(sum(measured) / len(measured), 4) if measured else None
