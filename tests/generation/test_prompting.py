"""The instruction that asks for the response language, and the sampling of response languages per prompt."""

from __future__ import annotations

from generation.prompting import INSTRUCTION_TEMPLATE, prompt_messages, sample_languages

LANGUAGES = ["ar", "bn", "de", "es", "fr", "hi", "ja", "ko", "sw", "ta", "th", "zh"]


def test_the_instruction_names_the_language_in_english_and_in_its_own_name():
    messages = prompt_messages("  Eleza kwa nini anga ni la buluu.\n", language_name="Tamil", autonym="தமிழ்")
    assert messages == [{"role": "user",
                         "content": "Eleza kwa nini anga ni la buluu.\n\nPlease answer in Tamil (தமிழ்)."}]


def test_a_language_whose_own_name_is_its_english_name_is_named_once():
    assert prompt_messages("Hi", language_name="English", autonym="English")[0]["content"] == (
        "Hi\n\nPlease answer in English.")
    assert prompt_messages("Hi", language_name="Swahili", autonym="")[0]["content"] == (
        "Hi\n\nPlease answer in Swahili.")


def test_a_custom_template():
    template = "Answer in {language} / {autonym}:\n{prompt}"
    assert prompt_messages("Hi", language_name="Hindi", autonym="हिन्दी", template=template)[0]["content"] == (
        "Answer in Hindi / हिन्दी:\nHi")
    assert "{prompt}" in INSTRUCTION_TEMPLATE and "{language}" in INSTRUCTION_TEMPLATE


def test_sample_languages_is_deterministic_per_key_and_seed_and_keeps_the_order():
    chosen = sample_languages(LANGUAGES, 3, key="demo-0001", seed=0)
    assert len(chosen) == 3 and set(chosen) <= set(LANGUAGES)
    assert chosen == [code for code in LANGUAGES if code in chosen]
    assert sample_languages(LANGUAGES, 3, key="demo-0001", seed=0) == chosen
    others = {tuple(sample_languages(LANGUAGES, 3, key=f"demo-{n:04d}", seed=0)) for n in range(20)}
    assert len(others) > 5  # prompts get different languages
    assert sample_languages(LANGUAGES, 3, key="demo-0001", seed=1) != chosen or (
        sample_languages(LANGUAGES, 3, key="demo-0001", seed=2) != chosen)


def test_all_languages_when_k_is_none_or_large():
    assert sample_languages(LANGUAGES, None, key="x", seed=0) == LANGUAGES
    assert sample_languages(LANGUAGES, 99, key="x", seed=0) == LANGUAGES
    assert sample_languages(LANGUAGES, 0, key="x", seed=0) == []
