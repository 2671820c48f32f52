"""Gold answers: is one judgment of a gold or qualification item right, and what follows from an annotator's record
(pure: no database; the rules are in docs/campaigns.md).

A gold answer names responses by position (their index in the imported `responses`, 0 first):

- `best`: the acceptable best responses. A ranking is right on `best` when some response of it has at most
  `tolerance` responses ranked strictly above it. With tolerance 0 it must be ranked first (a tie for first is
  fine: nothing is ranked above it); with tolerance 1 one response may be ranked above it.
- `wrong_language`: responses that must carry the `wrong_language` flag. Flags on other responses are not held
  against anyone: the check is about noticing an off-target answer, not about flagging sparingly.

A judgment is right when it is right on every part the gold answer gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WRONG_LANGUAGE = "wrong_language"
OK, WARNED, EXCLUDED = "ok", "warned", "excluded"
# The `target` of gold and qualification items: every eligible annotator may judge them, so they never fill up.
# 32,767 is the largest value of the column (a smallint on PostgreSQL).
GOLD_TARGET = 32_767


def gold_correct(gold: Mapping, ranks: Mapping[int, int], flags: Mapping[int, Sequence[str]]) -> bool:
    """Whether a ranking (position -> rank, 1 best) and its flags (position -> names) match the gold answer."""
    best = [position for position in gold.get("best") or [] if position in ranks]
    if gold.get("best"):
        if not best:
            return False
        ranked_above = min(sum(1 for other in ranks.values() if other < ranks[position]) for position in best)
        if ranked_above > gold.get("tolerance", 0):
            return False
    return all(WRONG_LANGUAGE in flags.get(position, ()) for position in gold.get("wrong_language") or [])


def by_position(values: Mapping[str, object], position_of: Mapping[int, int]) -> dict:
    """A judgment's ranks or flags, keyed by response id (as stored: strings), re-keyed by response position."""
    return {position_of[int(key)]: value for key, value in values.items() if int(key) in position_of}


@dataclass(frozen=True)
class Thresholds:
    """A campaign's gold settings (Campaign.gold_*)."""

    min_seen: int
    warn_below: float
    exclude_below: float


def standing_state(*, seen: int, correct: int, current: str, thresholds: Thresholds) -> tuple[str, str]:
    """(state, reason) of an annotator in a language pair after their gold record changed.

    Nothing happens before `min_seen` gold items. Below `exclude_below` the annotator is excluded, and stays so: an
    excluded annotator gets no more items, so only revising old gold judgments could lift the accuracy again, and
    that must not undo an exclusion (an admin can). Below `warn_below` they are warned; a warned annotator whose
    accuracy recovers is ok again.
    """
    if current == EXCLUDED:
        return EXCLUDED, ""
    if seen < thresholds.min_seen or seen == 0:
        return current, ""
    accuracy = correct / seen
    record = f"gold accuracy {accuracy:.0%} ({correct} of {seen})"
    if accuracy < thresholds.exclude_below:
        return EXCLUDED, f"{record} is below the exclusion threshold {thresholds.exclude_below:.0%}"
    if accuracy < thresholds.warn_below:
        return WARNED, f"{record} is below the warning threshold {thresholds.warn_below:.0%}"
    return OK, f"{record} meets the warning threshold {thresholds.warn_below:.0%}" if current != OK else ""


def qualification_passed(*, answered: int, correct: int, pass_mark: float) -> bool:
    return answered > 0 and correct / answered >= pass_mark
