"""Off-target detection: py3langid where it knows the language, the script check where it does not."""

import numpy as np
import pytest

from evaluation.metrics import (
    OffTargetRate,
    coverage,
    detect,
    dominant_script,
    identifiable_languages,
    is_off_target,
    langid,
    off_target_rate,
    script_of,
)

SWAHILI = "Anga ni la buluu kwa sababu mwanga wa jua hutawanywa na hewa."
TAMIL = "வானம் நீலமாக இருப்பதற்குக் காரணம் ஒளிச் சிதறல் ஆகும்."
ARABIC = "السماء زرقاء لأن ضوء الشمس يتشتت في الغلاف الجوي."
CHINESE_SIMPLIFIED = "天空是蓝色的，因为阳光在大气中发生散射。"
CHINESE_TRADITIONAL = "天空是藍色的，因為陽光在大氣中發生散射。"
RUSSIAN = "Небо голубое, потому что солнечный свет рассеивается в атмосфере."
ENGLISH = "The sky is blue because sunlight is scattered by the atmosphere."
AMHARIC = "ሰማዩ ሰማያዊ የሆነው የፀሐይ ብርሃን በአየር ውስጥ ስለሚበተን ነው።"


@pytest.mark.parametrize(
    ("text", "language"),
    [(SWAHILI, "sw"), (TAMIL, "ta"), (ARABIC, "ar"), (CHINESE_SIMPLIFIED, "zh"), (RUSSIAN, "ru"), (ENGLISH, "en")],
)
def test_detect(text, language):
    detection = detect(text)
    assert detection.language == language
    assert detection.confidence >= langid.MIN_CONFIDENCE


def test_detect_reports_nothing_for_text_without_language():
    assert detect("").language is None
    assert detect("12345 67890").language is None


def test_a_tamil_answer_to_a_tamil_prompt_is_on_target():
    assert is_off_target(TAMIL, "ta") is False


def test_an_english_answer_where_tamil_was_expected_is_off_target():
    assert is_off_target(ENGLISH, "ta") is True


def test_simplified_and_traditional_chinese_both_count_as_chinese():
    for text in (CHINESE_SIMPLIFIED, CHINESE_TRADITIONAL):
        assert is_off_target(text, "zh-Hans") is False
        assert is_off_target(text, "zh-Hant") is False


def test_region_subtags_are_ignored():
    assert is_off_target("O céu é azul porque a luz do sol se espalha na atmosfera.", "pt-BR") is False


def test_quechua_is_covered_so_english_for_quechua_is_off_target():
    # py3langid 0.4.0 knows Quechua, so the identifier decides, not the script fallback.
    assert coverage("qu")
    assert is_off_target(ENGLISH, "qu") is True


def test_same_script_is_not_measurable_for_an_uncovered_language():
    # Aymara is not in py3langid: the fallback sees Latin text for a Latin-script language and cannot tell
    # Aymara from English, so it must not say on-target.
    assert not coverage("ay")
    assert is_off_target(ENGLISH, "ay") is None


def test_other_script_is_off_target_for_an_uncovered_language():
    # Tigrinya (Ge'ez script) is not in py3langid; Latin text cannot be Tigrinya.
    assert not coverage("ti")
    assert is_off_target(ENGLISH, "ti") is True
    # Ethiopic text could be Tigrinya or Amharic: not measurable.
    assert is_off_target(AMHARIC, "ti") is None


def test_the_script_fallback_takes_a_given_script():
    assert is_off_target(ENGLISH, "xx", script="Ethi") is True
    assert is_off_target(ENGLISH, "xx") is None  # no script known for "xx"


def test_empty_text_is_not_measurable():
    assert is_off_target("", "sw") is None
    assert is_off_target("   \n", "ti") is None


def test_unsure_identification_is_not_measurable_never_on_target():
    assert is_off_target("OK", "sw") is None
    assert is_off_target("42", "sw") is None


def test_a_close_neighbour_is_not_measurable():
    # py3langid splits this Bengali sentence about evenly between Bengali and Assamese.
    assert is_off_target("আপনি কেমন আছেন?", "as") is None


def test_the_candidate_set_is_not_restricted_to_the_expected_language():
    # Identification must not depend on what we expect; otherwise English could never be found.
    assert detect(ENGLISH).language == "en"
    assert is_off_target(ENGLISH, "sw") is True
    assert detect(ENGLISH).language == "en"


def test_only_the_opening_of_a_long_answer_is_identified():
    # 400 bytes of Tamil first (about 130 characters) decide, whatever follows.
    assert is_off_target(TAMIL * 5 + ENGLISH * 20, "ta") is False


def test_off_target_rate_leaves_not_measurable_out_of_the_denominator():
    texts = [ENGLISH, ENGLISH, TAMIL, TAMIL, TAMIL, "", "42"]
    # 2 off-target, 3 on-target, 2 not measurable: rate = 2 / (2 + 3) = 0.4, not 2 / 7.
    assert off_target_rate(texts, "ta") == OffTargetRate(rate=0.4, off_target=2, measured=5, not_measurable=2)


def test_off_target_rate_is_none_when_nothing_is_measurable():
    assert off_target_rate(["", "OK"], "sw") == OffTargetRate(rate=None, off_target=0, measured=0, not_measurable=2)
    assert off_target_rate([], "sw") == OffTargetRate(rate=None, off_target=0, measured=0, not_measurable=0)


def test_off_target_rate_with_the_script_fallback():
    # Tigrinya expected: Latin answers are off-target, Ethiopic ones not measurable.
    assert off_target_rate([ENGLISH, AMHARIC, AMHARIC], "ti") == OffTargetRate(1.0, 1, 1, 2)


@pytest.mark.parametrize(
    "code", ["sw", "ta", "ar", "fa", "ur", "zh-Hans", "zh-Hant", "ja", "ko", "hi", "bn", "th", "ru", "yo", "am", "qu"]
)
def test_feedback_languages_are_covered(code):
    assert coverage(code)


def test_coverage_of_aliases_and_folded_varieties():
    assert coverage("fil") and coverage("nb")
    # Cantonese and Egyptian Arabic are folded into Chinese and Arabic: not measurable on their own.
    assert not coverage("yue") and not coverage("arz")
    assert "zxx" not in identifiable_languages()


@pytest.mark.parametrize(
    ("code", "script"),
    [("sw", "Latn"), ("am", "Ethi"), ("zh-Hans", "Hani"), ("zh-Hant", "Hani"), ("sr-Latn", "Latn"), ("ja", "Jpan")],
)
def test_script_of(code, script):
    assert script_of(code) == script


def test_script_of_an_unknown_language_is_none():
    assert script_of("xx") is None


def test_dominant_script():
    assert dominant_script(AMHARIC) == "Ethi"
    assert dominant_script("Das ist ein Test mit einem Wort: ሰላም") == "Latn"
    assert dominant_script("12345") is None


def test_py3langid_probability_vector_still_sums_to_one():
    # We call py3langid's private `_decide` for speed; this fails loudly if an upgrade changes it.
    probabilities = langid._probabilities(SWAHILI)
    assert probabilities.shape == (len(langid._model()[1]),)
    assert float(np.sum(probabilities)) == pytest.approx(1.0, abs=1e-4)
