"""Off-target detection: did the model answer in the language we asked for?

Language identification uses py3langid, whose naive-Bayes model (140 labels) ships inside the wheel, so nothing
is downloaded at run time. Its labels are ISO 639-1 where one exists, otherwise ISO 639-3; BCP-47 primary subtags
follow the same rule, so our codes compare with them after dropping region and script subtags ("zh-Hant" -> "zh";
py3langid cannot tell Simplified from Traditional, so both count as "zh").

Three outcomes, never two: a response is off-target (True), on-target (False), or *not measurable* (None). Not
measurable is reported when the text is empty or has no linguistic content, when the identifier is unsure, when it
only sees a language that is too close to the expected one to tell apart, and when the expected language is one the
model does not know and the text is in the expected language's script. An unsure answer is never counted as
on-target, and the candidate set is never restricted to the expected language: that would hide the very output
(English, or the prompt's language) that off-target detection is for.

Only the first ``MAX_BYTES`` bytes of UTF-8 are identified. The identifier walks every byte in Python, so its cost
grows with length: on one core about 17,000 responses/s at 100 bytes, 11,000/s at 500 bytes and 8,000/s at 800
bytes. A byte limit (not a character limit) keeps the cost the same in every script: 400 bytes is 400 characters of
English but about 130 of Tamil, two or three sentences, enough for a confident identification; long answers then run
at about 11,000/s. The opening of an answer is also where a model that drifts into English has already drifted; an
answer that switches language only later is not caught.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier

MAX_BYTES = 400
# Probability (after folding varieties, below) the top language needs before we act on it. py3langid calibrates its
# softmax with a temperature of sqrt(bytes), so 0.5 means "more likely than all other languages together".
MIN_CONFIDENCE = 0.5

# Old or deprecated codes, and macrolanguage codes whose member py3langid knows under another label.
_CODE_ALIASES = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "fil": "tl",  # py3langid's Filipino/Tagalog label
    "nb": "no",  # Bokmål; py3langid labels Norwegian "no" (and Nynorsk "nn")
    "gn": "gug",  # Guarani: py3langid knows Paraguayan Guarani
    "ff": "fuv",  # Fula: py3langid knows Nigerian Fulfulde
    "arb": "ar",
    "cmn": "zh",
    "swh": "sw",
    "zsm": "ms",
    "pes": "fa",
}

# Labels folded into a parent before deciding: their probability is added to the parent's. On short texts
# py3langid spreads Standard Arabic over Moroccan/Egyptian Arabic, Mandarin over written Wu/Cantonese, Modern
# Greek/Hebrew over their ancient forms; an answer in any of them is an answer in the parent language for our
# purpose. The folded varieties themselves are therefore not separately measurable (`coverage` says False).
_FOLDED_INTO = {
    "ary": "ar",
    "arz": "ar",
    "wuu": "zh",
    "yue": "zh",
    "uzs": "uz",
    "grc": "el",
    "hbo": "he",
}

# Languages py3langid confuses in the same script (probabilities split close to evenly on ordinary sentences, e.g.
# Bengali 0.505 / Assamese 0.495). Seeing a neighbour of the expected language is "not measurable", not
# off-target: we cannot say the model switched language.
_CONFUSABLE: tuple[frozenset[str], ...] = (
    frozenset({"bn", "as"}),
    frozenset({"hr", "bs", "sr"}),
    frozenset({"id", "ms"}),
    frozenset({"no", "nn", "da"}),
    frozenset({"es", "ext"}),
)

# "No linguistic content" (numbers, URLs, JSON): never a language.
_NO_LANGUAGE = "zxx"

# Language -> ISO 15924 script of its usual written form, for the script fallback and for BLEU's tokenizer choice.
# Our own small copy (annotation/ must not be imported from here); pass `script=` to override it. A script subtag
# in the code itself ("sr-Latn", "zh-Hant") wins over this table. Jpan = Han + Hiragana + Katakana,
# Kore = Hangul + Han; Hans/Hant are both Han.
_LANGUAGES_BY_SCRIPT = {
    "Latn": "af ay az br bs ca ceb co cs cy da de en eo es et eu ff fi fil fo fr fy ga gd gl gn ha haw hmn hr ht hu "
    "id ig is it jv kab ku la lb lg ln lt lv mg mi ms mt nb nl nn no ny om pl pt qu ro rw sk sl sm sn so sq st su "
    "sv sw tk tl tr uz vi wo xh yo zu",
    "Arab": "ar ckb fa ps sd ug ur",
    "Cyrl": "be bg kk ky mk mn ru sr tg tt uk",
    "Deva": "hi mr ne sa",
    "Beng": "as bn",
    "Hebr": "he yi",
    "Ethi": "am ti",
    "Tibt": "bo dz",
    "Mymr": "my shn",
    "Cher": "chr",
    "Thaa": "dv",
    "Grek": "el",
    "Gujr": "gu",
    "Armn": "hy",
    "Cans": "iu",
    "Jpan": "ja",
    "Geor": "ka",
    "Khmr": "km",
    "Knda": "kn",
    "Kore": "ko",
    "Laoo": "lo",
    "Mlym": "ml",
    "Orya": "or",
    "Guru": "pa",
    "Olck": "sat",
    "Sinh": "si",
    "Taml": "ta",
    "Telu": "te",
    "Thai": "th",
    "Hani": "zh",
}
LANGUAGE_SCRIPTS = {code: script for script, codes in _LANGUAGES_BY_SCRIPT.items() for code in codes.split()}

_SCRIPT_PARTS = {"Jpan": frozenset({"Hani", "Hira", "Kana"}), "Kore": frozenset({"Hang", "Hani"})}
_SCRIPT_SUBTAG_ALIASES = {"Hans": "Hani", "Hant": "Hani"}

# First word(s) of a letter's Unicode name -> ISO 15924. Unlisted scripts still count (under their name's first
# word), so a text in them is "another script" than, say, Ethiopic.
_NAME_TO_SCRIPT = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "GREEK": "Grek", "ARABIC": "Arab", "HEBREW": "Hebr",
    "DEVANAGARI": "Deva", "BENGALI": "Beng", "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda",
    "MALAYALAM": "Mlym", "GUJARATI": "Gujr", "GURMUKHI": "Guru", "ORIYA": "Orya", "SINHALA": "Sinh",
    "THAI": "Thai", "LAO": "Laoo", "KHMER": "Khmr", "MYANMAR": "Mymr", "TIBETAN": "Tibt", "ETHIOPIC": "Ethi",
    "GEORGIAN": "Geor", "ARMENIAN": "Armn", "HANGUL": "Hang", "HIRAGANA": "Hira", "KATAKANA": "Kana",
    "CJK": "Hani", "KANGXI": "Hani", "THAANA": "Thaa", "CHEROKEE": "Cher", "CANADIAN": "Cans", "OL": "Olck",
    "NKO": "Nkoo", "TIFINAGH": "Tfng", "MONGOLIAN": "Mong", "SYRIAC": "Syrc",
}  # fmt: skip


@dataclass(frozen=True)
class Detection:
    """Most likely language (our code; varieties folded) and its probability; language None when unsure."""

    language: str | None
    confidence: float


@dataclass(frozen=True)
class OffTargetRate:
    """Share of measurable responses that are off-target, as a fraction in [0, 1]; None when none was measurable."""

    rate: float | None
    off_target: int
    measured: int
    not_measurable: int


def _primary(code: str) -> str:
    primary = code.replace("_", "-").split("-", 1)[0].lower()
    return _CODE_ALIASES.get(primary, primary)


@cache
def _model() -> tuple[LanguageIdentifier, list[str], np.ndarray]:
    """Load once (~0.5 s): the identifier, our group labels, and a classes x groups 0/1 matrix that sums folds."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    groups = sorted({_FOLDED_INTO.get(label, label) for label in identifier.nb_classes})
    column = {label: i for i, label in enumerate(groups)}
    fold = np.zeros((len(identifier.nb_classes), len(groups)), dtype=np.float32)
    for row, label in enumerate(identifier.nb_classes):
        fold[row, column[_FOLDED_INTO.get(label, label)]] = 1.0
    return identifier, groups, fold


def _probabilities(text: str) -> np.ndarray:
    identifier, _, fold = _model()
    # `_decide` is the per-class probability vector behind py3langid's public classify()/rank(); rank() would sort
    # and build 142 tuples per call, a third of our time budget. py3langid is pinned; a test guards this call.
    # Cutting UTF-8 mid-character is fine: py3langid trims a partial trailing sequence before decoding.
    head = text[:MAX_BYTES].encode("utf-8", errors="surrogatepass")[:MAX_BYTES]
    return identifier._decide(head) @ fold  # noqa: SLF001


@cache
def identifiable_languages() -> frozenset[str]:
    """Primary subtags py3langid can tell apart (folded varieties excluded)."""
    return frozenset(_model()[1]) - {_NO_LANGUAGE}


def coverage(code: str) -> bool:
    """Whether the identifier knows this language (then `is_off_target` uses it rather than the script check)."""
    primary = _primary(code)
    return primary not in _FOLDED_INTO and primary in identifiable_languages()


def detect(text: str) -> Detection:
    """Most likely language of the first MAX_BYTES bytes; language None below MIN_CONFIDENCE or for no content."""
    if not text.strip():
        return Detection(None, 0.0)
    probabilities = _probabilities(text)
    best = int(probabilities.argmax())
    language, confidence = _model()[1][best], float(probabilities[best])
    if language == _NO_LANGUAGE or confidence < MIN_CONFIDENCE:
        return Detection(None, confidence)
    return Detection(language, confidence)


def script_of(code: str, script: str | None = None) -> str | None:
    """ISO 15924 script expected for a language: `script` if given, else the code's subtag, else our table."""
    if script:
        return _SCRIPT_SUBTAG_ALIASES.get(script, script)
    for subtag in code.replace("_", "-").split("-")[1:]:
        if len(subtag) == 4 and subtag.isalpha():
            subtag = subtag.title()
            return _SCRIPT_SUBTAG_ALIASES.get(subtag, subtag)
    primary = code.replace("_", "-").split("-", 1)[0].lower()
    return LANGUAGE_SCRIPTS.get(primary)


@lru_cache(maxsize=65536)
def _letter_script(char: str) -> str | None:
    if not char.isalpha():
        return None
    words = unicodedata.name(char, "").split()
    if not words or words[0] == "MODIFIER":
        return None
    if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:
        words = words[1:]
    return _NAME_TO_SCRIPT.get(words[0], words[0].title())


def script_shares(text: str) -> Counter[str]:
    """Letters per ISO 15924 script in the first MAX_BYTES characters (digits, punctuation, marks not counted)."""
    return Counter(script for char in text[:MAX_BYTES] if (script := _letter_script(char)))


def dominant_script(text: str) -> str | None:
    """The script most letters are written in; None when the text has no letters."""
    shares = script_shares(text)
    return shares.most_common(1)[0][0] if shares else None


def _is_off_script(text: str, expected_script: str | None) -> bool | None:
    """Script fallback: True when most letters are outside the expected script; otherwise not measurable."""
    shares = script_shares(text)
    if expected_script is None or not shares:
        return None
    accepted = _SCRIPT_PARTS.get(expected_script, frozenset({expected_script}))
    in_script = sum(count for script, count in shares.items() if script in accepted)
    # Same script proves nothing (Yoruba and English are both Latin), so the fallback can only say "off".
    return True if in_script * 2 < shares.total() else None


def _confusable(a: str, b: str) -> bool:
    return any(a in group and b in group for group in _CONFUSABLE)


def is_off_target(text: str, expected: str, *, script: str | None = None) -> bool | None:
    """True if the response is in another language, False if in `expected`, None if that cannot be measured.

    `script` (ISO 15924) overrides our table for the script fallback, used when py3langid does not know `expected`.
    """
    return _judge(text, _primary(expected), coverage(expected), script_of(expected, script))


def _judge(text: str, expected_primary: str, covered: bool, expected_script: str | None) -> bool | None:
    if not text.strip():
        return None
    if not covered:
        return _is_off_script(text, expected_script)
    detected = detect(text).language
    if detected is None:
        return None
    if detected == expected_primary:
        return False
    return None if _confusable(detected, expected_primary) else True


def off_target_rate(texts: Iterable[str], expected: str, *, script: str | None = None) -> OffTargetRate:
    """Off-target share over the measurable responses; not-measurable ones are counted but left out of the rate."""
    expected_primary, covered = _primary(expected), coverage(expected)
    expected_script = script_of(expected, script)
    outcomes = Counter(_judge(text, expected_primary, covered, expected_script) for text in texts)
    measured = outcomes[True] + outcomes[False]
    # e.g. 3 off-target, 5 on-target, 2 not measurable: rate = 3 / (3 + 5) = 0.375, not 3 / 10.
    rate = outcomes[True] / measured if measured else None
    return OffTargetRate(rate=rate, off_target=outcomes[True], measured=measured, not_measurable=outcomes[None])
