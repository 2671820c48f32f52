"""Off-target detection: py3langid where it knows the language, the script check where it does not."""

import numpy as np
import pytest

from evaluation.metrics import (
    OffTargetRate,
    Verdict,
    coverage,
    detect,
    dominant_script,
    han_variant,
    identifiable_languages,
    is_off_target,
    judge,
    langid,
    off_target_rate,
    script_of,
)
from evaluation.metrics.langid import prose_of

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


def test_traditional_chinese_for_a_simplified_target_is_off_target_and_the_reverse():
    # py3langid calls both "zh"; the OpenCC character test tells them apart (藍 為 陽 氣 發 vs 蓝 为 阳 气 发).
    assert judge(CHINESE_SIMPLIFIED, "zh-Hans") == Verdict(False, langid.REASON_EXPECTED)
    assert judge(CHINESE_TRADITIONAL, "zh-Hans") == Verdict(True, langid.REASON_OTHER_VARIANT)
    assert is_off_target(CHINESE_TRADITIONAL, "zh-Hant") is False
    assert is_off_target(CHINESE_SIMPLIFIED, "zh-Hant") is True
    # The registry passes the script ("Hans"/"Hant"); regions say it too.
    assert is_off_target(CHINESE_TRADITIONAL, "zh", script="Hans") is True
    assert is_off_target(CHINESE_TRADITIONAL, "zh-TW") is False and is_off_target(CHINESE_SIMPLIFIED, "zh-TW") is True


def test_chinese_written_the_same_in_both_variants_is_on_target_for_either():
    text = "天上有月亮和星星，夜空很美。"
    assert han_variant(text) is None
    assert is_off_target(text, "zh-Hans") is False and is_off_target(text, "zh-Hant") is False


def test_characters_both_variants_use_do_not_decide():
    # 后 (皇后), 只 (只有), 台 (台北) are ordinary Traditional characters although OpenCC converts them.
    assert han_variant("皇后只在台北") is None


def test_serbian_in_the_other_script_is_off_target():
    cyrillic, latin = "Београд је главни град Србије.", "Beograd je glavni grad Srbije."
    assert judge(cyrillic, "sr-Latn") == Verdict(True, langid.REASON_OTHER_SCRIPT)
    assert is_off_target(latin, "sr-Cyrl") is True
    assert is_off_target(latin, "sr") is True  # the registry writes Serbian in Cyrillic
    assert is_off_target(cyrillic, "sr") is False
    # Latin Serbian for sr-Latn: the right script, but py3langid cannot tell Serbian from Croatian or Bosnian.
    assert is_off_target(latin, "sr-Latn") is not True


def test_romanized_hindi_is_off_target():
    assert judge("Agar bachche har din padhein, to unki bhasha behtar hoti hai.", "hi") == Verdict(
        True, langid.REASON_OTHER_SCRIPT)
    assert is_off_target("अगर बच्चे हर दिन पढ़ें, तो उनकी भाषा बेहतर होती है।", "hi") is False
    assert is_off_target("اگر بچے ہر روز پڑھیں تو ان کی زبان بہتر ہوتی ہے۔", "hi") is True  # Urdu, Arabic script


def test_a_short_english_answer_is_caught():
    # Below MIN_CONFIDENCE (English 0.44) but clear: 146 times likelier than Swahili.
    assert judge("Yes, of course.", "sw") == Verdict(True, langid.REASON_OTHER_LANGUAGE)
    assert is_off_target("Yes, of course.", "ar") is True  # another script, at any length from MIN_LETTERS on


def test_fewer_than_min_letters_is_not_measurable():
    assert langid.MIN_LETTERS == 3
    assert judge("OK", "hi") == Verdict(None, langid.REASON_TOO_SHORT)
    assert judge("是", "ja") == Verdict(None, langid.REASON_TOO_SHORT)
    assert judge("Yes", "hi").off_target is True  # three Latin letters for a Devanagari language


def test_code_is_not_language():
    code = "```python\nfor i in range(10):\n    print(i)\n```"
    assert judge(code, "hi") == Verdict(None, langid.REASON_NO_LETTERS)
    assert is_off_target("def add(a, b):\n    return a + b", "ta") is None
    assert is_off_target("SELECT name FROM users WHERE age > 30;", "ja") is None
    # The prose around code decides.
    prose = "इस फ़ंक्शन से दो संख्याओं का योग मिलता है:\n" + code + "\nयह हर संख्या को अलग पंक्ति में छापता है।"
    assert is_off_target(prose, "hi") is False
    assert is_off_target("Use this loop to print ten numbers:\n" + code + "\nEach goes on its own line.", "hi")


def test_prose_of_removes_code_urls_and_inline_spans():
    assert prose_of("Soma `open('x').read()` kwenye https://example.com/a?b=1 sasa") == "Soma   kwenye   sasa"
    assert prose_of("total = sum(x.price for x in items);\nHabari") == "Habari"


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


def test_off_target_rate_reports_three_counts():
    rate = off_target_rate([ENGLISH, TAMIL, TAMIL, "", "OK"], "ta")
    assert (rate.off_target, rate.on_target, rate.not_measurable, rate.total) == (1, 2, 2, 5)


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
