"""The language registry file and its loader; pure, no database."""

from __future__ import annotations

import copy
import json

import pytest

from annotation.languages import (
    FIELDS,
    REGISTRY_PATH,
    REQUIRED_FEEDBACK,
    all_languages,
    feedback_languages,
    get_language,
    normalize_language_code,
    validate_registry,
)


@pytest.fixture
def entries() -> list[dict]:
    return json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))


def test_the_checked_in_file_validates_clean(entries):
    assert validate_registry(entries) == []


def test_every_entry_has_exactly_the_documented_fields(entries):
    assert all(list(entry) == list(FIELDS) for entry in entries)


def test_it_covers_at_least_the_100_instruction_languages_and_english():
    codes = {spec.code for spec in all_languages()}
    assert len(codes) >= 100
    assert {"en", "zh-Hans", "zh-Hant", "pt"} <= codes


def test_exactly_30_feedback_languages_without_english():
    feedback = feedback_languages()
    assert len(feedback) == 30
    assert "en" not in {spec.code for spec in feedback}


def test_the_required_feedback_languages_are_flagged():
    assert set(REQUIRED_FEEDBACK) <= {spec.code for spec in feedback_languages()}
    assert {"ar", "fa", "ur", "zh-Hans", "ja", "ko", "hi", "bn", "ta", "th", "ru", "sw", "yo", "am", "qu"} <= set(
        REQUIRED_FEEDBACK
    )


def test_feedback_languages_span_scripts_and_tiers():
    feedback = feedback_languages()
    assert len({spec.script for spec in feedback}) >= 8
    assert {spec.tier for spec in feedback} == {"high", "medium", "low"}


def test_rtl_languages_are_exactly_those_in_rtl_scripts():
    rtl = {spec.code for spec in all_languages() if spec.direction == "rtl"}
    in_rtl_script = {spec.code for spec in all_languages() if spec.script in {"Arab", "Hebr", "Thaa", "Syrc"}}
    assert rtl == in_rtl_script
    assert {"ar", "fa", "ur", "he", "ps", "sd", "ug", "ckb", "yi"} <= rtl


def test_known_entries_are_right():
    amharic = get_language("am")
    assert amharic is not None
    assert (amharic.flores_code, amharic.native_name, amharic.script, amharic.direction) == (
        "amh_Ethi",
        "አማርኛ",
        "Ethi",
        "ltr",
    )
    urdu = get_language("ur")
    assert urdu is not None and (urdu.native_name, urdu.direction, urdu.is_rtl) == ("اردو", "rtl", True)
    assert get_language("zh-Hant").flores_code == "zho_Hant"
    assert get_language("zh-hans") is None  # get_language takes canonical codes only


def test_codes_and_flores_codes_are_unique():
    specs = all_languages()
    assert len({spec.code for spec in specs}) == len(specs)
    assert len({spec.flores_code for spec in specs}) == len(specs)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sw", "sw"),
        ("zh-Hans", "zh-Hans"),
        ("swh_Latn", "sw"),
        ("zho_Hans", "zh-Hans"),
        ("zho_Hant", "zh-Hant"),
        ("por_Latn", "pt"),
        ("kor_Hang", "ko"),
        ("ZH-hans", "zh-Hans"),
        ("SW", "sw"),
        ("zh_Hans", "zh-Hans"),
        ("swh-latn", "sw"),
        (" de ", "de"),
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-Hant-TW", "zh-Hant"),
        ("iw", "he"),
        ("in", "id"),
        ("fil", "tl"),
        ("pt-BR", "pt"),
        ("pt-br", "pt"),
        ("es-419", "es"),
        ("eng", "en"),
    ],
)
def test_normalize_language_code_finds_the_registry_code(raw, expected):
    assert normalize_language_code(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "xx", "klingon", "xx_Latn", "zh--CN", "sr-Latn", "zh-Latn", "zho"])
def test_normalize_language_code_returns_none_for_unknown_or_wrong_script(raw):
    assert normalize_language_code(raw) is None


def test_every_canonical_and_flores_code_round_trips():
    for spec in all_languages():
        assert normalize_language_code(spec.code) == spec.code
        assert normalize_language_code(spec.flores_code) == spec.code


def test_validate_registry_catches_a_duplicate_code(entries):
    broken = copy.deepcopy(entries)
    broken.insert(1, dict(broken[0], flores_code="xxx_Latn"))
    problems = validate_registry(broken)
    assert any(f"code {entries[0]['code']!r} appears 2 times" in problem for problem in problems)


def test_validate_registry_catches_a_duplicate_flores_code(entries):
    broken = copy.deepcopy(entries)
    broken[1]["flores_code"] = broken[0]["flores_code"]
    assert any("flores_code" in problem and "appears 2 times" in problem for problem in validate_registry(broken))


def test_validate_registry_catches_a_wrong_direction(entries):
    broken = copy.deepcopy(entries)
    index = next(i for i, entry in enumerate(broken) if entry["code"] == "ar")
    broken[index]["direction"] = "ltr"
    assert validate_registry(broken) == [f"entry {index} (ar): direction is 'ltr' but Arab text is rtl"]


def test_validate_registry_catches_rtl_on_a_latin_language(entries):
    broken = copy.deepcopy(entries)
    next(entry for entry in broken if entry["code"] == "de")["direction"] = "rtl"
    assert any("(de): direction is 'rtl' but Latn text is ltr" in problem for problem in validate_registry(broken))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tier", "huge", "tier 'huge' is not one of"),
        ("direction", "down", "direction 'down' is not one of"),
        ("script", "latin", "not an ISO 15924 code"),
        ("script", "Cyrl", "disagrees with flores_code"),
        ("code", "Sw", "not a canonical BCP-47 tag"),
        ("flores_code", "swh", "is not like 'swh_Latn'"),
        ("native_name", "", "native_name must be a non-empty string"),
        ("feedback_default", "yes", "feedback_default must be true or false"),
    ],
)
def test_validate_registry_catches_bad_fields(entries, field, value, message):
    broken = copy.deepcopy(entries)
    next(entry for entry in broken if entry["code"] == "sw")[field] = value
    assert any(message in problem for problem in validate_registry(broken))


def test_validate_registry_catches_a_wrong_feedback_set(entries):
    broken = copy.deepcopy(entries)
    next(entry for entry in broken if entry["code"] == "qu")["feedback_default"] = False
    problems = validate_registry(broken)
    assert "29 languages have feedback_default true; there must be 30" in problems
    assert "required feedback languages missing or not flagged: qu" in problems


def test_validate_registry_catches_english_as_feedback_and_unsorted_entries(entries):
    broken = copy.deepcopy(entries)
    next(entry for entry in broken if entry["code"] == "en")["feedback_default"] = True
    broken.reverse()
    problems = validate_registry(broken)
    assert any("English (en) must not be a default feedback language" in problem for problem in problems)
    assert any("sorted by code" in problem for problem in problems)


def test_validate_registry_catches_missing_and_extra_fields(entries):
    broken = copy.deepcopy(entries)
    del broken[0]["tier"]
    broken[1]["family"] = "Afro-Asiatic"
    problems = validate_registry(broken)
    assert any("missing ['tier']" in problem for problem in problems)
    assert any("extra ['family']" in problem for problem in problems)
