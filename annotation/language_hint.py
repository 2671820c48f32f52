"""The annotate page's "Detected: …" hint: a machine's language ID says a response is not in its language.

A response may carry the language a detector found (a generation job measures every candidate; an import may bring
it). When that differs from the response's language, the annotator sees the hint and the wrong-language flag is
ticked for them on a first judgment, to confirm or clear.

"Differs" follows evaluation.metrics.langid, which decides what counts as off-target output: codes compare by their
primary subtag, after its aliases (``nb``/``no``, ``fil``/``tl``) and with varieties folded into their parent
(Cantonese and Wu into Chinese, Egyptian Arabic into Arabic), and a close neighbour (Indonesian/Malay,
Croatian/Bosnian/Serbian ...) is no hint: the identifier cannot tell them apart, so it cannot say the model
switched. Script and variety are not compared: the identifier names a language, not a variant, so a ``zh-Hant``
response detected as ``zh`` (which the registry reads as ``zh-Hans``) is no hint. annotation/ may not import
evaluation/ (ARCHITECTURE.md), so the three tables are copied here; tests/annotation/test_detected_language.py
checks that they are langid's.
"""

from __future__ import annotations

from collections.abc import Sequence

from annotation.gold import WRONG_LANGUAGE

# evaluation.metrics.langid._CODE_ALIASES
CODE_ALIASES = {
    "iw": "he", "in": "id", "ji": "yi", "fil": "tl", "nb": "no", "gn": "gug", "ff": "fuv", "arb": "ar", "cmn": "zh",
    "swh": "sw", "zsm": "ms", "pes": "fa",
}  # fmt: skip
# evaluation.metrics.langid._FOLDED_INTO
FOLDED_INTO = {"ary": "ar", "arz": "ar", "wuu": "zh", "yue": "zh", "uzs": "uz", "grc": "el", "hbo": "he"}
# evaluation.metrics.langid._CONFUSABLE
CONFUSABLE: tuple[frozenset[str], ...] = (
    frozenset({"bn", "as"}),
    frozenset({"hr", "bs", "sr"}),
    frozenset({"id", "ms"}),
    frozenset({"no", "nn", "da"}),
    frozenset({"es", "ext"}),
)


def primary_language(code: str) -> str:
    """The language a code names, as langid compares it: primary subtag, aliases resolved, varieties folded."""
    primary = code.replace("_", "-").split("-", 1)[0].lower()
    primary = CODE_ALIASES.get(primary, primary)
    return FOLDED_INTO.get(primary, primary)


def detected_differs(language: str, detected_language: str | None) -> bool:
    """Whether the hint shows: a language was detected, and it is another than the response's, not a neighbour."""
    if not detected_language:
        return False
    expected, found = primary_language(language), primary_language(detected_language)
    return expected != found and not any(expected in group and found in group for group in CONFUSABLE)


def flags_to_show(*, saved: Sequence[str] | None, hinted: bool, flag_vocabulary: Sequence[str]) -> list[str]:
    """The flags ticked on a response's card.

    `saved`: the flags of the annotator's judgment being revised, or of the submit that was just refused; None on a
    first judgment. What the annotator saved or sent wins as it is (they may have cleared the pre-set flag). On a
    first judgment a hinted response starts flagged wrong-language, when the campaign has that flag.
    """
    if saved is not None:
        return list(saved)
    return [WRONG_LANGUAGE] if hinted and WRONG_LANGUAGE in flag_vocabulary else []
