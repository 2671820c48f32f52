"""Machine checks on the candidates of one prompt and response language, before any person sees them. Django-free.

Each candidate gets:

- its detected language (evaluation.metrics.langid.detect, on the prose without code) with the identifier's
  confidence, and its dominant script; None for all three when there is nothing to identify (fewer than
  langid.MIN_LETTERS letters, or the identifier is unsure);
- off_target: langid.judge against the language asked for: True (another language or script), False, or None when
  not measurable (too short, a language the identifier does not know, a close neighbour, unsure). The same rules
  evaluation uses, so a wrong-language rate here and there mean the same thing;
- empty: no visible character (whitespace, control and format characters such as zero-width spaces do not count);
- truncated: the backend stopped it at max_new_tokens (no end of sequence);
- duplicate_of: the index of an earlier kept candidate it merges into, or None.

Duplicates. Texts are compared after Unicode NFKC, case folding and collapsing whitespace. Equal texts are exact
duplicates. Near duplicates have a Jaccard similarity of their character 5-gram sets of at least NEAR_DUPLICATE
(0.9). Why these numbers: character n-grams work in every script (no word splitting needed for Thai or Chinese), and
5 characters are long enough that two unrelated texts in one language share few of them. Changing one word of w
characters in a text of L characters replaces about w + 4 of its L - 4 5-grams, so the similarity is about
(L - w - 8) / (L + w); with words of 6 characters, 0.9 is reached at about 200 characters. A one-word difference in
a paragraph is noise an annotator should not have to rank twice; in a one-line answer ("The capital is Paris" /
"... Lyon") that word is the answer, and the two stay apart. Two answers that share a long opening and then go
different ways share only the opening's 5-grams: half shared gives about 0.33, well below 0.9.
Empty candidates never merge (empty is its own mark); a candidate merges into the first kept one it matches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.metrics import langid

SHINGLE = 5
NEAR_DUPLICATE = 0.9

_WHITESPACE = re.compile(r"\s+")
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


@dataclass(frozen=True)
class Candidate:
    generator: str  # the generator's label
    sample: int
    text: str
    new_tokens: int
    truncated: bool


@dataclass(frozen=True)
class Checked:
    candidate: Candidate
    detected_language: str | None  # None: not measurable
    detected_confidence: float | None
    detected_script: str | None  # ISO 15924 of most letters
    off_target: bool | None  # None: not measurable
    empty: bool
    truncated: bool
    duplicate_of: int | None  # index (in the candidates given) of the kept candidate it merged into

    @property
    def usable(self) -> bool:
        """Worth showing: not empty and not merged into another (off-target is the job's choice, not ours)."""
        return not self.empty and self.duplicate_of is None


def check_candidates(candidates: Sequence[Candidate], *, expected_language: str,
                     expected_script: str | None = None) -> list[Checked]:
    """The checks of the module docstring for each candidate, in the order given. `expected_script` (the
    registry's ISO 15924 script of the language) overrides langid's own table."""
    kept: list[tuple[int, str, frozenset[str]]] = []  # (index, normalised text, 5-grams) of kept candidates
    checked = []
    for index, candidate in enumerate(candidates):
        empty = is_empty(candidate.text)
        duplicate_of = None
        if not empty:
            normal = normalise(candidate.text)
            grams = shingles(normal)
            duplicate_of = next((kept_index for kept_index, kept_normal, kept_grams in kept
                                 if kept_normal == normal or jaccard(grams, kept_grams) >= NEAR_DUPLICATE), None)
            if duplicate_of is None:
                kept.append((index, normal, grams))
        language, confidence, script = detection(candidate.text)
        verdict = langid.judge(candidate.text, expected_language, script=expected_script)
        checked.append(Checked(candidate=candidate, detected_language=language, detected_confidence=confidence,
                               detected_script=script, off_target=verdict.off_target, empty=empty,
                               truncated=candidate.truncated, duplicate_of=duplicate_of))
    return checked


def detection(text: str) -> tuple[str | None, float | None, str | None]:
    """(language, confidence, script) of the text's prose; None where there is too little to say."""
    prose = langid.prose_of(text)
    shares = langid.script_shares(prose)
    if shares.total() < langid.MIN_LETTERS:
        return None, None, langid.dominant_script(prose)
    found = langid.detect(prose)
    if found.language is None:
        return None, None, langid.dominant_script(prose)
    return found.language, round(found.confidence, 4), langid.dominant_script(prose)


def is_empty(text: str) -> bool:
    return all(unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text)


def normalise(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def shingles(normal: str) -> frozenset[str]:
    if len(normal) <= SHINGLE:
        return frozenset({normal})
    return frozenset(normal[start:start + SHINGLE] for start in range(len(normal) - SHINGLE + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
