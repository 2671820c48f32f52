"""ROUGE tokens exactly as XL-Sum's multilingual scorer makes them (csebuetnlp/xl-sum, multilingual_rouge_scoring).

XL-Sum reports ROUGE from its own fork of Google's rouge-score, called as ``RougeScorer(keys, lang=<name>,
use_stemmer=True)`` by its seq2seq/utils.py. Per text it:

1. lower-cases; removes control and format characters (so the zero-width non-joiner of Persian goes), splits on
   whitespace and on punctuation (Unicode category P, and every ASCII character that is not a letter or digit),
   dropping the punctuation; joins the pieces with spaces;
2. word-segments Chinese with jieba, Japanese with fugashi (MeCab + UniDic), Thai with pythainlp's ``newmm`` and
   Burmese with its own syllable rules; jieba and newmm keep the spaces of step 1 as tokens, and so do we. Every
   other language (or a segmenter that returns nothing) goes through OpenNMT's ``aggressive`` pre-tokenizer, which
   splits letters from digits, and then one token per CJK ideograph;
3. stems tokens longer than 3 characters: NLTK's Snowball stemmer for its languages (words on NLTK's stop list
   left unstemmed), a suffix stripper for Hindi, the Rafi Kamal stemmer for Bengali, TurkishStemmer for Turkish;
   a language it has no stemmer for is not stemmed;
4. drops empty tokens.

We call the same libraries the same way. Differences, all forced by "nothing is downloaded at run time": Japanese
uses the ``unidic-lite`` dictionary (UniDic 2.1.2, shipped in its wheel) where XL-Sum's setup downloads the full
UniDic (``python -m unidic download``); the NLTK stop lists and the Bengali rules are copied into
``evaluation/metrics/data`` (see its README) instead of being fetched. ROUGE-L itself is the same longest-common-
subsequence F1 (rouge-score's code, which XL-Sum's fork keeps), averaged over pairs; XL-Sum's CLI reports the
middle of 1,000 bootstrap resamples of that mean, which differs from it only by resampling noise.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib.metadata import version
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
MIN_STEM_LENGTH = 3  # MultiStemmer(min_char_length=3): only tokens longer than this are stemmed

# Our language code (primary subtag, or the full code where the script matters) -> the name XL-Sum's scorer takes.
# XL-Sum's 45 languages, plus the Snowball languages its scorer also stems when given their name.
XLSUM_LANGUAGES = {
    "am": "amharic", "ar": "arabic", "az": "azerbaijani", "bn": "bengali", "my": "burmese", "zh": "chinese",
    "zh-Hans": "chinese", "zh-Hant": "chinese", "en": "english", "fr": "french", "gu": "gujarati", "ha": "hausa",
    "hi": "hindi", "ig": "igbo", "id": "indonesian", "ja": "japanese", "rn": "kirundi", "ko": "korean",
    "ky": "kyrgyz", "mr": "marathi", "ne": "nepali", "om": "oromo", "ps": "pashto", "fa": "persian",
    "pcm": "pidgin", "pt": "portuguese", "pa": "punjabi", "ru": "russian", "gd": "scottish_gaelic",
    "sr": "serbian_cyrillic", "sr-Cyrl": "serbian_cyrillic", "sr-Latn": "serbian_latin", "si": "sinhala",
    "so": "somali", "es": "spanish", "sw": "swahili", "ta": "tamil", "te": "telugu", "th": "thai",
    "ti": "tigrinya", "tr": "turkish", "uk": "ukrainian", "ur": "urdu", "uz": "uzbek", "vi": "vietnamese",
    "cy": "welsh", "yo": "yoruba",
    "da": "danish", "nl": "dutch", "fi": "finnish", "de": "german", "hu": "hungarian", "it": "italian",
    "no": "norwegian", "nb": "norwegian", "ro": "romanian", "sv": "swedish",
}  # fmt: skip
_SNOWBALL = frozenset({"arabic", "danish", "dutch", "english", "finnish", "french", "german", "hungarian", "italian",
                       "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish"})
STEMMED_LANGUAGES = _SNOWBALL | {"hindi", "bengali", "turkish"}
SEGMENTED_LANGUAGES = frozenset({"chinese", "japanese", "thai", "burmese"})


def xlsum_language(code: str) -> str | None:
    """The name XL-Sum's scorer knows a language by, or None for a language it has neither stemmer nor segmenter
    for under any name (then it only splits on spaces and punctuation, as for any unknown name)."""
    normalized = code.replace("_", "-")
    if normalized in XLSUM_LANGUAGES:
        return XLSUM_LANGUAGES[normalized]
    return XLSUM_LANGUAGES.get(normalized.split("-", 1)[0].lower())


# --- step 1: XL-Sum's BasicTokenizer (BERT's, with punctuation dropped) ------------------------------------------


def _is_punctuation(char: str) -> bool:
    point = ord(char)
    if 33 <= point <= 47 or 58 <= point <= 64 or 91 <= point <= 96 or 123 <= point <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _clean(text: str) -> str:
    out = []
    for char in text:
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            out.append(" ")
        elif ord(char) in (0, 0xFFFD) or unicodedata.category(char).startswith("C"):
            continue
        else:
            out.append(char)
    return "".join(out)


def sanitize(text: str) -> list[str]:
    """Whitespace- and punctuation-split pieces, punctuation dropped (XL-Sum's BasicTokenizer.__call__)."""
    pieces: list[str] = []
    for token in _clean(text).split():
        word: list[str] = []
        for char in token:
            if _is_punctuation(char):
                if word:
                    pieces.append("".join(word))
                    word = []
            else:
                word.append(char)
        if word:
            pieces.append("".join(word))
    return pieces


def _is_cjk_ideograph(point: int) -> bool:
    return (0x4E00 <= point <= 0x9FFF or 0x3400 <= point <= 0x4DBF or 0x20000 <= point <= 0x2A6DF
            or 0x2A700 <= point <= 0x2B73F or 0x2B740 <= point <= 0x2B81F or 0x2B820 <= point <= 0x2CEAF
            or 0xF900 <= point <= 0xFAFF or 0x2F800 <= point <= 0x2FA1F)


def _space_cjk(text: str) -> str:
    return "".join(f" {char} " if _is_cjk_ideograph(ord(char)) else char for char in text)


# --- step 2: segmenters -------------------------------------------------------------------------------------------


@cache
def _pretokenizer():
    import pyonmttok

    return pyonmttok.Tokenizer("aggressive")


def _burmese(text: str) -> list[str]:
    """XL-Sum's BurmeseTokenizer (syllables, after ACM TALLIP 10.1145/3325885), line for line."""
    asat, dot, stack = chr(0x103A), chr(0x1037), chr(0x1039)
    dependent = {chr(0x102B + x) for x in range(8)} | {chr(0x1036 + x) for x in range(3)}
    dependent |= {chr(0x103B + x) for x in range(4)} | {asat}
    text = text.replace(chr(0x200C), " ").replace(dot + asat, asat + dot)
    units = list("".join(text.lower().strip().split()))
    units.reverse()
    for i in range(len(units) - 1):
        if units[i][0] in dependent:
            units[i + 1] += units[i]
            units[i] = ""
    units.reverse()
    units = " ".join(units).split()
    for i in range(1, len(units)):
        if asat in units[i] and len(units[i]) < 4:
            units[i - 1] += units[i]
            units[i] = ""
    units = " ".join(units).split()
    return " ".join(units).replace(" " + stack + " ", stack).split()


@cache
def _segmenter(language: str | None) -> Callable[[str], list[str]] | None:
    if language == "chinese":
        import jieba

        jieba.setLogLevel(60)  # it logs its dictionary loading at INFO
        jieba.initialize()
        return lambda text: list(jieba.cut(text))
    if language == "japanese":
        import fugashi
        import unidic_lite

        tagger = fugashi.Tagger(f'-O wakati -b 50000 -d "{unidic_lite.DICDIR}"')
        return lambda text: tagger.parse(text).split()
    if language == "thai":
        # newmm's dictionary ships in the wheel; read-only keeps pythainlp from creating ~/pythainlp-data.
        os.environ.setdefault("PYTHAINLP_READ_ONLY", "1")
        os.environ.setdefault("PYTHAINLP_OFFLINE", "1")
        from pythainlp.tokenize import word_tokenize

        return lambda text: word_tokenize(text, engine="newmm")
    if language == "burmese":
        return _burmese
    return None


# --- step 3: stemmers ---------------------------------------------------------------------------------------------

_HINDI_SUFFIXES = {
    1: ["ो", "े", "ू", "ु", "ी", "ि", "ा"],
    2: ["कर", "ाओ", "िए", "ाई", "ाए", "ने", "नी", "ना", "ते", "ीं", "ती", "ता", "ाँ", "ां", "ों", "ें"],
    3: ["ाकर", "ाइए", "ाईं", "ाया", "ेगी", "ेगा", "ोगी", "ोगे", "ाने", "ाना", "ाते", "ाती", "ाता", "तीं", "ाओं", "ाएं",
        "ुओं", "ुएं", "ुआं"],
    4: ["ाएगी", "ाएगा", "ाओगी", "ाओगे", "एंगी", "ेंगी", "एंगे", "ेंगे", "ूंगी", "ूंगा", "ातीं", "नाओं", "नाएं", "ताओं",
        "ताएं", "ियाँ", "ियों", "ियां"],
    5: ["ाएंगी", "ाएंगे", "ाऊंगी", "ाऊंगा", "ाइयाँ", "ाइयों", "ाइयां"],
}


def _hindi_stem(token: str) -> str:
    """XL-Sum's HindiStemmer (Ramanathan & Rao 2003): the longest listed suffix, leaving at least 2 characters."""
    for length in (5, 4, 3, 2, 1):
        if len(token) > length + 1:
            for suffix in _HINDI_SUFFIXES[length]:
                if token.endswith(suffix):
                    return token[:-length]
    return token


class _RafiStemmer:
    """The Rafi Kamal (2014) Bengali stemmer of abhik1505040/bengali-stemmer, which XL-Sum installs from git."""

    _VOWEL_SIGNS = frozenset("ািীেুূো")

    def __init__(self, rules: str) -> None:
        lines: list[str] = []
        self.replace: dict[str, str] = {}
        for raw in rules.splitlines():
            line = "".join(raw.split()).split("#", 1)[0]
            if not line:
                continue
            if "->" in line:
                line, replacement = line.split("->", 1)
                if replacement:
                    self.replace[line] = replacement
            lines.append(line)
        self.groups: list[list[str]] = []
        inside = False
        for line in lines:
            if line == "{":
                self.groups.append([])
                inside = True
            elif line == "}":
                inside = False
            elif inside:
                self.groups[-1].append(line)

    def __call__(self, word: str) -> str:
        for group in self.groups:
            for suffix in group:
                if not word.endswith(suffix):
                    continue
                index = len(word) - len(suffix)
                if suffix in self.replace:
                    replacement = self.replace[suffix]
                    chars = list(word)
                    for offset, char in enumerate(replacement):
                        if char != ".":
                            chars[index + offset] = char
                    word = "".join(chars[: index + len(replacement)])
                elif any(char not in self._VOWEL_SIGNS for char in word[:index]):
                    word = word[:index]
                break
        return word


def _stemmer(language: str | None) -> Callable[[str], str] | None:
    """A new stemmer: NLTK's Arabic one keeps state from word to word (its results depend on the words before),
    so each corpus gets a fresh one and stems in XL-Sum's order, as its one scorer per evaluation does."""
    if language in _SNOWBALL:
        from nltk.stem import SnowballStemmer

        stemmer = SnowballStemmer(language)
        # ignore_stopwords=True, as XL-Sum asks for it, would read NLTK's downloadable corpus: same list, local copy.
        stemmer.stemmer.stopwords = _stopwords(language)
        return stemmer.stem
    if language == "hindi":
        return _hindi_stem
    if language == "bengali":
        return _bengali_stemmer()
    if language == "turkish":
        from TurkishStemmer import TurkishStemmer

        return TurkishStemmer().stem
    return None


@cache
def _stopwords(language: str) -> frozenset[str]:
    words = (DATA / "snowball_stopwords" / f"{language}.txt").read_text(encoding="utf-8").split("\n")
    return frozenset(word for word in words if word)


@cache
def _bengali_stemmer() -> _RafiStemmer:
    return _RafiStemmer((DATA / "bengali_rafikamal2014.rules").read_text(encoding="utf-8"))


class XLSumTokenizer:
    """Tokens XL-Sum's scorer compares, for texts in one language (an XL-Sum name, e.g. "hindi"; see
    xlsum_language). One instance per corpus: its stemmer may keep state, as XL-Sum's does."""

    def __init__(self, language: str | None, *, stem: bool = True) -> None:
        self.language = language
        self.segmenter = _segmenter(language)
        self.stemmer = _stemmer(language) if stem else None

    def tokenize(self, text: str) -> list[str]:
        text = " ".join(sanitize(text.lower().strip()))
        tokens = self.segmenter(text) if self.segmenter else []
        if not tokens and text:
            text = " ".join(_pretokenizer().tokenize(text)[0])
            tokens = _space_cjk(text).split()
        if self.stemmer:
            tokens = [self.stemmer(token) if len(token) > MIN_STEM_LENGTH else token for token in tokens]
        return [token for token in tokens if token]


def xlsum_tokenize(text: str, language: str | None, *, stem: bool = True) -> list[str]:
    """Tokens XL-Sum's scorer compares for one text in `language` (an XL-Sum name), with a fresh stemmer."""
    return XLSumTokenizer(language, stem=stem).tokenize(text)


def rouge_settings(language: str | None) -> dict[str, str]:
    """How `xlsum_tokenize` treats a language, for the result's stored settings."""
    segmenters = {"chinese": f"jieba {version('jieba')}", "japanese":
                  f"fugashi {version('fugashi')} + unidic-lite {version('unidic-lite')}",
                  "thai": f"pythainlp {version('pythainlp')} newmm", "burmese": "XL-Sum's Burmese syllable rules"}
    if language in _SNOWBALL:
        stemmer = f"NLTK {version('nltk')} Snowball {language}, stop words unstemmed"
    else:
        stemmer = {"hindi": "XL-Sum's Hindi suffix stripper", "bengali": "Rafi Kamal 2014 (bengali-stemmer rules)",
                   "turkish": f"TurkishStemmer {version('TurkishStemmer')}"}.get(language or "", "none")
    return {
        "reference": "XL-Sum multilingual_rouge_scoring (RougeScorer(lang=..., use_stemmer=True))",
        "xlsum_language": language or "(none: no segmenter, no stemmer)",
        "segmenter": segmenters.get(language or "", f"OpenNMT aggressive (pyonmttok {version('pyonmttok')})"),
        "stemmer": stemmer,
        "aggregate": "mean of per-pair F1 x 100",
    }

