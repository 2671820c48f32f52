"""The language registry: `annotation/data/languages.json`, read once, no Django needed.

Each entry is a language of the multilingual instruction set, all covered by FLORES-200 so that every one can be
evaluated. `feedback_default` marks the 30 languages a new feedback campaign offers by default (the paper's
cross-lingual feedback set has 30); English is not among them because the feedback is cross-lingual into
non-English languages.

`tier` is the amount of monolingual web text there is for the language (mC4 / CC-100 scale), not its number of
speakers:

- high: tens of billions of tokens or more; roughly the 35 largest languages of those corpora.
- medium: about one to ten billion tokens; a national language with a sizeable web presence.
- low: under about a billion tokens; most African, indigenous and regional languages.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REGISTRY_PATH = Path(__file__).resolve().parent / "data" / "languages.json"

FIELDS = ("code", "flores_code", "name", "native_name", "script", "direction", "tier", "feedback_default")
TIERS = ("high", "medium", "low")
DIRECTIONS = ("ltr", "rtl")
# Right-to-left scripts of ISO 15924 that FLORES-200 or likely additions use.
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Thaa", "Syrc", "Nkoo", "Adlm"})
FEEDBACK_COUNT = 30
REQUIRED_FEEDBACK = ("ar", "fa", "ur", "zh-Hans", "ja", "ko", "hi", "bn", "ta", "th", "ru", "sw", "yo", "am", "qu")
# FLORES-200 writes Korean as Hang; as a language tag script, Kore (Hangul + Hanja) is what Korean text uses.
SCRIPT_EQUIVALENTS = {("Kore", "Hang")}

# Deprecated ISO 639 codes still emitted by old tools (Java's Locale, Google APIs) and region tags that pick a
# Chinese script, which a plain truncation to "zh" would get wrong for Taiwan and Hong Kong.
ALIASES = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-my": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "mo": "ro",
    "no": "nb",
    "fil": "tl",
    "kmr": "ku",
}

_CODE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?$")
_FLORES_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_SCRIPT_RE = re.compile(r"^[A-Z][a-z]{3}$")


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    code: str
    flores_code: str
    name: str
    native_name: str
    script: str
    direction: str
    tier: str
    feedback_default: bool

    @property
    def is_rtl(self) -> bool:
        return self.direction == "rtl"


def _entry_problems(entry: Mapping[str, Any]) -> list[str]:
    if set(entry) != set(FIELDS):
        missing, extra = sorted(set(FIELDS) - set(entry)), sorted(set(entry) - set(FIELDS))
        return [f"fields must be exactly {', '.join(FIELDS)} (missing {missing}, extra {extra})"]
    problems = [f"{field} must be a non-empty string" for field in FIELDS[:-1] if not _is_text(entry[field])]
    if not isinstance(entry["feedback_default"], bool):
        problems.append("feedback_default must be true or false")
    if problems:
        return problems
    code, flores, script = entry["code"], entry["flores_code"], entry["script"]
    if not _CODE_RE.match(code):
        problems.append(f"code {code!r} is not a canonical BCP-47 tag like 'sw' or 'zh-Hans'")
    if not _FLORES_RE.match(flores):
        problems.append(f"flores_code {flores!r} is not like 'swh_Latn'")
    if not _SCRIPT_RE.match(script):
        problems.append(f"script {script!r} is not an ISO 15924 code like 'Latn'")
    elif _FLORES_RE.match(flores) and script != flores[4:] and (script, flores[4:]) not in SCRIPT_EQUIVALENTS:
        problems.append(f"script {script!r} disagrees with flores_code {flores!r}")
    if entry["tier"] not in TIERS:
        problems.append(f"tier {entry['tier']!r} is not one of {', '.join(TIERS)}")
    if entry["direction"] not in DIRECTIONS:
        problems.append(f"direction {entry['direction']!r} is not one of {', '.join(DIRECTIONS)}")
    elif (entry["direction"] == "rtl") != (script in RTL_SCRIPTS):
        expected = "rtl" if script in RTL_SCRIPTS else "ltr"
        problems.append(f"direction is {entry['direction']!r} but {script} text is {expected}")
    return problems


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_registry(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every problem with the registry entries, one readable line each; empty when the registry is sound."""
    problems: list[str] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"entry {index}: must be a JSON object, not {type(entry).__name__}")
            continue
        where = f"entry {index} ({entry.get('code', '?')!s})"
        problems += [f"{where}: {problem}" for problem in _entry_problems(entry)]

    well_formed = [
        e
        for e in entries
        if isinstance(e, Mapping) and set(e) == set(FIELDS) and _is_text(e["code"]) and _is_text(e["flores_code"])
    ]
    for field in ("code", "flores_code"):
        for value, count in Counter(e[field] for e in well_formed).items():
            if count > 1:
                problems.append(f"{field} {value!r} appears {count} times")
    codes = [e["code"] for e in well_formed]
    if codes != sorted(codes):
        problems.append("entries must be sorted by code, so that diffs of the file stay readable")
    feedback = {e["code"] for e in well_formed if e["feedback_default"] is True}
    if len(feedback) != FEEDBACK_COUNT:
        problems.append(f"{len(feedback)} languages have feedback_default true; there must be {FEEDBACK_COUNT}")
    if missing := [code for code in REQUIRED_FEEDBACK if code not in feedback]:
        problems.append(f"required feedback languages missing or not flagged: {', '.join(missing)}")
    if "en" not in codes:
        problems.append("English (en) must be in the registry: it is the pivot language")
    elif "en" in feedback:
        problems.append("English (en) must not be a default feedback language: feedback is into non-English languages")
    return problems


@cache
def all_languages() -> tuple[LanguageSpec, ...]:
    entries = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    if problems := validate_registry(entries):
        raise ValueError(f"{REGISTRY_PATH}: " + "; ".join(problems))
    return tuple(LanguageSpec(**entry) for entry in entries)


def feedback_languages() -> tuple[LanguageSpec, ...]:
    return tuple(spec for spec in all_languages() if spec.feedback_default)


@cache
def _by_code() -> dict[str, LanguageSpec]:
    return {spec.code: spec for spec in all_languages()}


def get_language(code: str) -> LanguageSpec | None:
    return _by_code().get(code)


@cache
def _lookup_keys() -> dict[str, str]:
    """Lower-cased, hyphenated spellings -> canonical code; earlier sources win a clash."""
    keys: dict[str, str] = {}
    specs = all_languages()
    for spec in specs:
        keys.setdefault(spec.code.lower(), spec.code)
    for alias, code in ALIASES.items():
        if code in _by_code():
            keys.setdefault(alias, code)
    for spec in specs:
        keys.setdefault(spec.flores_code.lower().replace("_", "-"), spec.code)
    # A bare ISO 639-3 code ("swh", "eng") names the language when only one FLORES entry has it.
    prefixes = Counter(spec.flores_code[:3] for spec in specs)
    for spec in specs:
        if prefixes[spec.flores_code[:3]] == 1:
            keys.setdefault(spec.flores_code[:3], spec.code)
    return keys


def normalize_language_code(raw: str) -> str | None:
    """The registry code for a BCP-47 tag, FLORES-200 code or common alias, in any case; None if unknown.

    Unknown trailing subtags are dropped one at a time (RFC 4647 lookup), so "pt-BR" and "zh-Hans-CN" resolve,
    but a dropped script subtag must match the language's script: "sr-Latn" is not the Cyrillic "sr".
    """
    if not isinstance(raw, str):
        return None
    subtags = raw.strip().replace("_", "-").lower().split("-")
    if not all(subtags):
        return None
    keys = _lookup_keys()
    for end in range(len(subtags), 0, -1):
        code = keys.get("-".join(subtags[:end]))
        if code is None:
            continue
        spec = _by_code()[code]
        allowed_scripts = {spec.script.lower(), spec.flores_code[4:].lower()}
        dropped_scripts = [tag for tag in subtags[end:] if len(tag) == 4 and tag.isalpha()]
        return code if all(tag in allowed_scripts for tag in dropped_scripts) else None
    return None
