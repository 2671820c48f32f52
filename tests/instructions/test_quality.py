"""The fallback translation quality estimate on hand-made cases in four languages (instructions/quality.py)."""

from __future__ import annotations

import importlib.util

import pytest

from instructions.quality import (
    COMET_KIWI_ENV,
    CometKiwiUnavailable,
    QualityScore,
    choose_best,
    comet_kiwi_available,
    comet_kiwi_checkpoint,
    estimate_quality,
    repetition,
    score_with_comet_kiwi,
)

SOURCE = "Drink plenty of water every day to stay healthy."
# language -> (correct translation, its back-translation into English, a fluent output in the wrong language)
CASES = {
    "sw": ("Kunywa maji mengi kila siku ili uwe na afya njema.",
           "Drink a lot of water every day so that you have good health.",
           "Buvez beaucoup d'eau chaque jour pour rester en bonne santé."),  # French for Swahili
    "ar": ("اشرب الكثير من الماء كل يوم لتبقى بصحة جيدة.",
           "Drink a lot of water every day to stay in good health.",
           "Buvez beaucoup d'eau chaque jour pour rester en bonne santé."),
    "zh-Hans": ("每天多喝水，保持身体健康。",
                "Drink more water every day and keep your body healthy.",
                "毎日たくさん水を飲んで、健康を保ちましょう。"),  # Japanese for Chinese
    "hi": ("स्वस्थ रहने के लिए हर दिन खूब पानी पिएं।",
           "Drink plenty of water every day to stay healthy.",
           "سالم رہنے کے لیے ہر روز خوب پانی پیئیں۔"),  # Urdu for Hindi
}


def score(candidate: str, language: str, **kwargs) -> QualityScore:
    return estimate_quality(source=SOURCE, source_language="en", candidate=candidate, target_language=language,
                            **kwargs)


def candidates(language: str, with_back_translation: bool) -> dict[str, QualityScore]:
    correct, back, wrong = CASES[language]

    def bt(text: str) -> dict:
        return {"back_translation": text} if with_back_translation else {}

    half = correct[: len(correct) // 2]
    return {
        "correct": score(correct, language, **bt(back)),
        "copy": score(SOURCE, language, **bt(SOURCE)),
        "wrong_language": score(wrong, language, **bt(SOURCE)),
        "truncated": score(half, language, stopped_at_max_tokens=True, **bt(SOURCE[: len(SOURCE) // 2])),
        "empty": score("", language, **bt("")),
        "repetitive": score(" ".join([correct] * 6), language, **bt(" ".join([back] * 6))),
    }


@pytest.mark.parametrize("with_back_translation", [False, True])
@pytest.mark.parametrize("language", list(CASES))
def test_correct_translation_outranks_every_broken_one(language, with_back_translation):
    scored = candidates(language, with_back_translation)
    correct = scored["correct"]
    assert correct.flags == () and correct.score >= 0.8, correct
    for name, broken in scored.items():
        if name != "correct":
            assert broken.score < correct.score - 0.3, (name, broken)
    ordered = list(scored.values())
    assert choose_best(ordered) == 0
    # Order does not matter: the correct one wins from any position.
    assert choose_best(ordered[::-1]) == len(ordered) - 1


@pytest.mark.parametrize("language", list(CASES))
def test_each_failure_raises_its_flag(language):
    scored = candidates(language, with_back_translation=False)
    assert scored["copy"].copy_of_source
    assert scored["wrong_language"].wrong_language or scored["wrong_language"].wrong_script
    assert scored["truncated"].truncated
    assert scored["empty"].empty and scored["empty"].score == 0.0
    assert scored["repetitive"].repetitive
    for name in ("copy", "wrong_language", "truncated", "empty"):
        assert scored[name].hard_failure and scored[name].score <= 0.2, (name, scored[name])


def test_wrong_language_in_the_same_script_and_in_another_script():
    assert score(CASES["sw"][2], "sw").flags == ("wrong_language",)
    assert score(CASES["hi"][2], "hi").wrong_script
    assert score(CASES["zh-Hans"][2], "zh-Hans").wrong_script


def test_truncation_without_the_flag_shows_in_length_and_in_an_open_code_fence():
    short = score(CASES["sw"][0][:15], "sw")
    assert short.length_ratio_out_of_range and short.score <= 0.6
    source = "Print it:\n```python\nprint('hi')\n```\nDone."
    cut = estimate_quality(source=source, source_language="en", candidate="Ichapishe:\n```python\nprint('hi')",
                           target_language="sw")
    assert cut.truncated


def test_length_ratio_expects_chinese_much_shorter_than_english():
    chinese = score(CASES["zh-Hans"][0], "zh-Hans")
    assert chinese.details["expected_length_ratio"] == pytest.approx(0.32)
    assert not chinese.length_ratio_out_of_range
    # A Chinese output as long as the English source is suspicious.
    padded = score(CASES["zh-Hans"][0] * 3, "zh-Hans")
    assert padded.length_ratio_out_of_range


def test_round_trip_separates_a_fluent_wrong_meaning_from_the_correct_one():
    correct, back, _ = CASES["sw"]
    other_meaning = "Kula chakula kingi kila usiku ili ulale vizuri."  # "Eat a lot of food every night to sleep well."
    without = [score(other_meaning, "sw"), score(correct, "sw")]
    assert without[0].score == without[1].score  # the fallback alone cannot see meaning
    with_bt = [score(other_meaning, "sw", back_translation="Eat a lot of food every night to sleep well."),
               score(correct, "sw", back_translation=back)]
    assert with_bt[1].components["round_trip"] > with_bt[0].components["round_trip"] + 0.3
    assert choose_best(with_bt) == 1


def test_code_kept_untranslated_is_not_a_copy():
    source = "Explain what `sorted(items, key=len)` returns for the list `['bb', 'a']`."
    candidate = "Eleza `sorted(items, key=len)` inarudisha nini kwa orodha `['bb', 'a']`."
    result = estimate_quality(source=source, source_language="en", candidate=candidate, target_language="sw")
    assert not result.copy_of_source and result.flags == ()


def test_same_language_is_never_a_copy():
    result = estimate_quality(source=SOURCE, source_language="en-GB", candidate=SOURCE, target_language="en")
    assert not result.copy_of_source


def test_repetition_counts_repeated_ngrams():
    assert repetition("a b c a b c a b c", "en") == pytest.approx(4 / 7)
    assert repetition(CASES["sw"][0], "sw") == 0.0
    assert repetition("健康" * 10, "zh-Hans") > 0.5


def test_choose_best_breaks_ties_by_hard_failure_then_flags_then_order():
    clean, soft = QualityScore(0.5), QualityScore(0.5, flags=("repetitive",))
    hard = QualityScore(0.5, flags=("truncated",))
    assert choose_best([hard, soft, clean]) == 2
    assert choose_best([hard, soft]) == 1
    assert choose_best([QualityScore(0.7), QualityScore(0.7)]) == 0
    with pytest.raises(ValueError, match="No candidates"):
        choose_best([])


def test_comet_kiwi_score_replaces_the_round_trip_and_flags_still_cap():
    correct, back, wrong = CASES["sw"]
    good = score(correct, "sw", back_translation=back, comet_kiwi=0.85)
    assert "round_trip" in good.components and good.score == pytest.approx(0.5 * 0.85 + 0.5, abs=1e-3)
    # A high COMET-Kiwi score does not rescue a French output for Swahili.
    assert score(wrong, "sw", comet_kiwi=0.9).score <= 0.1


@pytest.mark.skipif(importlib.util.find_spec("comet") is not None, reason="unbabel-comet is installed here")
def test_comet_kiwi_unavailable_without_the_package_even_with_a_model(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "model.ckpt").write_bytes(b"not a real checkpoint")
    monkeypatch.setenv(COMET_KIWI_ENV, str(tmp_path))
    assert comet_kiwi_checkpoint() == tmp_path / "checkpoints" / "model.ckpt"
    assert not comet_kiwi_available()
    with pytest.raises(CometKiwiUnavailable, match="unbabel-comet"):
        score_with_comet_kiwi([(SOURCE, CASES["sw"][0])])


def test_comet_kiwi_unavailable_without_a_configured_model(tmp_path, monkeypatch):
    monkeypatch.delenv(COMET_KIWI_ENV, raising=False)
    assert comet_kiwi_checkpoint() is None and not comet_kiwi_available()
    assert comet_kiwi_checkpoint(tmp_path / "missing") is None
    assert not comet_kiwi_available(tmp_path / "missing")
