"""Off-target detection: did the model answer in the language (and script) we asked for?

Language identification uses py3langid, whose naive-Bayes model (140 labels) ships inside the wheel, so nothing
is downloaded at run time. Its labels are ISO 639-1 where one exists, otherwise ISO 639-3; BCP-47 primary subtags
follow the same rule, so our codes compare with them after dropping region and script subtags.

Three outcomes, never two: a response is off-target (True), on-target (False), or *not measurable* (None). The
rules, in order (`judge` returns the outcome and the rule that decided it, one of the REASON_* strings):

1. Empty text is not measurable (``empty``).
2. Code is not language: fenced and inline code, URLs, e-mail addresses and code-like lines (a line whose
   characters are at least 15 % code punctuation, that ends like a statement (``;``, ``{``, ``}``, with a ``=`` or
   ``(`` in it), or that starts like one: ``def``, ``import``, ``SELECT``, ``return`` ...) are removed first; an
   answer with no letters left is not measurable (``no-letters``).
3. **Short answers**: fewer than ``MIN_LETTERS`` (3) letters left is not measurable (``too-short``): "OK", "是",
   "42". From 3 letters on, rule 4 judges them; rule 6 needs the identifier to be sure.
4. **Script** (Unicode script of each letter, from its character name): when fewer than half of the letters are in
   the expected script, the answer is off-target (``other-script``) — romanized Hindi for Hindi, Serbian Cyrillic
   for ``sr-Latn`` (and Latin for ``sr``/``sr-Cyrl``), Urdu for Hindi, English for Tamil. This holds for every
   language whose script we know (our table, the registry's script, or the code's script subtag).
5. A language py3langid does not know, written in its expected script, is not measurable
   (``unknown-language``): Aymara and English are both Latin.
6. **Language identification** on what rules 2–4 left (its first ``MAX_BYTES`` bytes): the most likely language
   (with Arabic, Chinese, Greek, Hebrew and Uzbek varieties folded into their parent) decides when its probability
   is at least ``MIN_CONFIDENCE``. Below that, a *clear* other language still decides — probability at least
   ``CLEAR_MIN`` and ``CLEAR_RATIO`` times that of the expected language — which is how a short English answer for
   a Latin-script language is caught ("Yes, of course." for Swahili: English 0.44, Swahili 0.003); anything else
   is not measurable (``unsure``). An unsure answer is never counted as on-target.
7. A close neighbour of the expected language (Bengali/Assamese, Croatian/Bosnian/Serbian, Indonesian/Malay,
   Norwegian/Danish, Spanish/Extremaduran) is not measurable (``neighbour``): we cannot say the model switched.
8. **Chinese variants**: for ``zh-Hans`` and ``zh-Hant`` (or a TW/HK/MO vs CN/SG region), Chinese text whose
   characters are clearly of the other variant is off-target (``other-variant``): at least one character that
   exists only in that variant (OpenCC's character tables, less a list of characters both variants use) and more
   than twice as many as of the expected one.
   Text written the same in both variants is on-target.

The candidate set is never restricted to the expected language: that would hide the very output (English, or the
prompt's language) that off-target detection is for. The measured accuracy and coverage of these rules on a
labelled set of 227 answers (evaluation/samples/langid_labelled.jsonl) are printed by ``bench/langid_bench.py``.

Only the first ``MAX_BYTES`` bytes of UTF-8 are identified. The identifier walks every byte in Python, so its cost
grows with length: on one core about 17,000 responses/s at 100 bytes, 11,000/s at 500 bytes and 8,000/s at 800
bytes. A byte limit (not a character limit) keeps the cost the same in every script: 400 bytes is 400 characters of
English but about 130 of Tamil, two or three sentences, enough for a confident identification; long answers then run
at about 11,000/s. The opening of an answer is also where a model that drifts into English has already drifted; an
answer that switches language only later is not caught.
"""

from __future__ import annotations

import re
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
# Below MIN_CONFIDENCE, another language still decides when it is this likely and this many times likelier than the
# expected language (rule 6 of the module docstring). On the labelled set (bench/langid_bench.py) the rule lifts
# coverage from 92.6 % to 93.5 % at the same 99.5 % accuracy; looser values (0.1 and 5x) catch one answer more and
# no error there, but the set has few short answers, so we keep to answers that are clearly in another language.
CLEAR_MIN = 0.3
CLEAR_RATIO = 20.0
# Fewer letters than this (after code is removed) is not measurable (rule 3).
MIN_LETTERS = 3
# Characters of an answer searched for code to remove: enough to leave MAX_BYTES of prose after a code block.
PROSE_WINDOW = 2000
# A Chinese text is of one variant when it has at least this many characters found only in that variant, and more
# than VARIANT_RATIO times as many as of the other (rule 8). One is enough: "台湾的高山很多" differs from the
# Traditional "台灣的高山很多" in 湾 alone, and the characters both variants use are left out of the count.
VARIANT_MIN = 1
VARIANT_RATIO = 2

REASON_EMPTY = "empty"
REASON_NO_LETTERS = "no-letters"
REASON_TOO_SHORT = "too-short"
REASON_OTHER_SCRIPT = "other-script"
REASON_UNKNOWN_LANGUAGE = "unknown-language"
REASON_UNSURE = "unsure"
REASON_NEIGHBOUR = "neighbour"
REASON_OTHER_LANGUAGE = "other-language"
REASON_OTHER_VARIANT = "other-variant"
REASON_EXPECTED = "expected-language"

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
_HAN_VARIANTS = frozenset({"Hans", "Hant"})
_HANT_REGIONS = frozenset({"TW", "HK", "MO"})
_HANS_REGIONS = frozenset({"CN", "SG", "MY"})

# Characters that exist in both variants although OpenCC converts them (后/後 in 皇后, 干/乾 in 干涉, 只/隻 in 只有,
# 著/着 in 著名 ...): counting them would make ordinary Traditional text look Simplified and the reverse.
_BOTH_VARIANTS = frozenset("后干里只台系制面余准冲征松板卷历范斗谷丑表才克困采胡夸合向于云借注恶筑布占咸"
                           "著乾瞭覆夥藉蒐鍾麼臺週")

# Code that is not prose (rule 2): fenced blocks, inline spans, URLs, e-mail addresses, and code-like lines.
_FENCED_CODE = re.compile(r"(```|~~~).*?(\1|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_URL_OR_EMAIL = re.compile(r"(https?://|www\.)\S+|[\w.+-]+@[\w-]+\.[\w.]+")
_CODE_PUNCTUATION = frozenset("{}[]()<>=;_$#\\|&*+/\"'")
_CODE_LINE_START = re.compile(
    r"^\s*(def |class \w+|import \w|from [\w.]+ import|return\b|#include|function\b|const |let |var |public |"
    r"private |SELECT |INSERT |UPDATE |DELETE |print\(|console\.|\$ |>>> )"
)

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
class Verdict:
    """off_target: True, False, or None (not measurable); reason: the REASON_* rule that decided it."""

    off_target: bool | None
    reason: str


@dataclass(frozen=True)
class OffTargetRate:
    """Share of measurable responses that are off-target, as a fraction in [0, 1]; None when none was measurable."""

    rate: float | None
    off_target: int
    measured: int
    not_measurable: int

    @property
    def on_target(self) -> int:
        return self.measured - self.off_target

    @property
    def total(self) -> int:
        return self.measured + self.not_measurable


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
def _group_index() -> dict[str, int]:
    return {label: i for i, label in enumerate(_model()[1])}


@cache
def identifiable_languages() -> frozenset[str]:
    """Primary subtags py3langid can tell apart (folded varieties excluded)."""
    return frozenset(_model()[1]) - {_NO_LANGUAGE}


def coverage(code: str) -> bool:
    """Whether the identifier knows this language (then `is_off_target` uses it beyond the script check)."""
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


def han_variant_of(code: str, script: str | None = None) -> str | None:
    """'Hans' or 'Hant' when the code (or `script`) says which Chinese variant is expected, else None."""
    if script in _HAN_VARIANTS:
        return script
    subtags = code.replace("_", "-").split("-")
    if subtags[0].lower() not in ("zh", "cmn", "yue"):
        return None
    for subtag in subtags[1:]:
        if subtag.title() in _HAN_VARIANTS:
            return subtag.title()
        if subtag.upper() in _HANT_REGIONS:
            return "Hant"
        if subtag.upper() in _HANS_REGIONS:
            return "Hans"
    return None


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


def _is_code_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if _CODE_LINE_START.match(line):
        return True
    # A statement: "total = sum(x.price for x in items);", "if (x) {".
    if stripped.endswith((";", "{", "}")) and ("=" in stripped or "(" in stripped):
        return True
    # str.count runs in C: 20 passes over a line cost less than one Python loop over its characters.
    symbols = sum(stripped.count(char) for char in _CODE_PUNCTUATION)
    visible = len(stripped) - stripped.count(" ")
    # e.g. "x[i] = y[j] * 2" has 6 of 11; ordinary prose with a bracket stays below 15 %.
    return symbols >= 2 and symbols * 100 >= 15 * visible


def prose_of(text: str) -> str:
    """The opening of the text without code, URLs and e-mail addresses (rule 2): what the script check and the
    identifier see. Only the first PROSE_WINDOW characters are read: both look at MAX_BYTES at most."""
    text = text[:PROSE_WINDOW]
    text = _URL_OR_EMAIL.sub(" ", _INLINE_CODE.sub(" ", _FENCED_CODE.sub("\n", text)))
    return "\n".join(line for line in text.splitlines() if not _is_code_line(line))


@cache
def _variant_characters() -> tuple[frozenset[str], frozenset[str]]:
    """(Simplified-only, Traditional-only) Han characters, from OpenCC's character conversion (one call each)."""
    import opencc

    chars = [chr(point) for start, end in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF)) for point in range(start, end + 1)]
    joined = "\n".join(chars)
    to_traditional = opencc.OpenCC("s2t").convert(joined).split("\n")
    to_simplified = opencc.OpenCC("t2s").convert(joined).split("\n")
    simplified = {c for c, t in zip(chars, to_traditional, strict=True) if t != c}
    traditional = {c for c, t in zip(chars, to_simplified, strict=True) if t != c}
    both = simplified & traditional | _BOTH_VARIANTS
    return frozenset(simplified - both), frozenset(traditional - both)


def han_variant(text: str) -> str | None:
    """'Hans' or 'Hant' when the text's characters clearly belong to one Chinese variant, else None (rule 8)."""
    simplified_only, traditional_only = _variant_characters()
    simplified = sum(char in simplified_only for char in text[:MAX_BYTES])
    traditional = sum(char in traditional_only for char in text[:MAX_BYTES])
    if traditional >= VARIANT_MIN and traditional > VARIANT_RATIO * simplified:
        return "Hant"
    if simplified >= VARIANT_MIN and simplified > VARIANT_RATIO * traditional:
        return "Hans"
    return None


def _confusable(a: str, b: str) -> bool:
    return any(a in group and b in group for group in _CONFUSABLE)


def judge(text: str, expected: str, *, script: str | None = None) -> Verdict:
    """Whether `text` is off-target for the language `expected` (BCP-47), and which rule said so.

    `script` (ISO 15924, e.g. the registry's "Hans" or "Cyrl") overrides our table and the code's subtag.
    """
    return _judge(text, _primary(expected), coverage(expected), script_of(expected, script),
                  han_variant_of(expected, script))


def is_off_target(text: str, expected: str, *, script: str | None = None) -> bool | None:
    """True if the response is in another language or script, False if in `expected`, None if not measurable."""
    return judge(text, expected, script=script).off_target


def _judge(text: str, expected_primary: str, covered: bool, expected_script: str | None,
           expected_variant: str | None) -> Verdict:
    if not text.strip():
        return Verdict(None, REASON_EMPTY)
    prose = prose_of(text)
    shares = script_shares(prose)
    letters = shares.total()
    if letters == 0:
        return Verdict(None, REASON_NO_LETTERS)
    if letters < MIN_LETTERS:
        return Verdict(None, REASON_TOO_SHORT)
    if expected_script is not None:
        accepted = _SCRIPT_PARTS.get(expected_script, frozenset({expected_script}))
        if sum(count for name, count in shares.items() if name in accepted) * 2 < letters:
            return Verdict(True, REASON_OTHER_SCRIPT)
    if not covered:
        # Same script proves nothing (Yoruba and English are both Latin).
        return Verdict(None, REASON_UNKNOWN_LANGUAGE)
    probabilities = _probabilities(prose)
    best = int(probabilities.argmax())
    language, confidence = _model()[1][best], float(probabilities[best])
    if language == _NO_LANGUAGE:
        return Verdict(None, REASON_NO_LETTERS)
    if confidence < MIN_CONFIDENCE:
        expected_index = _group_index().get(expected_primary)
        expected_probability = float(probabilities[expected_index]) if expected_index is not None else 0.0
        clear = language != expected_primary and confidence >= CLEAR_MIN and (
            confidence >= CLEAR_RATIO * expected_probability)
        if not clear:
            return Verdict(None, REASON_UNSURE)
    if language == expected_primary:
        if expected_variant is not None and han_variant(prose) not in (None, expected_variant):
            return Verdict(True, REASON_OTHER_VARIANT)
        return Verdict(False, REASON_EXPECTED)
    if _confusable(language, expected_primary):
        return Verdict(None, REASON_NEIGHBOUR)
    return Verdict(True, REASON_OTHER_LANGUAGE)


def off_target_rate(texts: Iterable[str], expected: str, *, script: str | None = None) -> OffTargetRate:
    """Off-target share over the measurable responses; not-measurable ones are counted but left out of the rate."""
    arguments = (_primary(expected), coverage(expected), script_of(expected, script), han_variant_of(expected, script))
    outcomes = Counter(_judge(text, *arguments).off_target for text in texts)
    measured = outcomes[True] + outcomes[False]
    # e.g. 3 off-target, 5 on-target, 2 not measurable: rate = 3 / (3 + 5) = 0.375, not 3 / 10; the 2 are reported
    # beside it (OffTargetRate.not_measurable), never hidden.
    rate = outcomes[True] / measured if measured else None
    return OffTargetRate(rate=rate, off_target=outcomes[True], measured=measured, not_measurable=outcomes[None])
