"""Protected segments: masks out, the same text back, and every lost mask reported (instructions/segments.py)."""

from __future__ import annotations

import pytest

from instructions.segments import (
    KIND_CODE_BLOCK,
    KIND_DISPLAY_MATH,
    KIND_EMAIL,
    KIND_HTML_TAG,
    KIND_INLINE_CODE,
    KIND_INLINE_MATH,
    KIND_MASK_LIKE,
    KIND_PLACEHOLDER,
    KIND_URL,
    PROBLEM_DUPLICATED,
    PROBLEM_MANGLED,
    PROBLEM_MISSING,
    PROBLEM_UNKNOWN,
    Segment,
    protect,
    restore,
    translatable_parts,
)

ARABIC_URL = "زر الموقع https://example.org/ar/page?id=3، ثم اكتب إلى info@example.org؟"
CHINESE_CODE = "使用 `print()` 函数输出 {name}，详见https://docs.python.org/3/了解更多。"
HINDI_FORMULA = "सूत्र $E = mc^2$ याद रखें और \\(a^2+b^2=c^2\\) भी। कीमत $5 और $10 है, 50% छूट, %s और %(count)d।"
MARKDOWN = (
    "Write a function:\n```python\ndef add(a, b):\n    return a + b  # see https://a.org\n```\n"
    "Use <b>bold</b> when x<y and y>z, and <a href=\"https://b.org\">this link</a>.\n"
    "$$\n\\sum_i x_i\n$$\nHello {{user}}, a literal <x0/> and ``code with ` tick``."
)
SAMPLES = [ARABIC_URL, CHINESE_CODE, HINDI_FORMULA, MARKDOWN, "", "No protected text at all."]


def kinds_and_texts(text: str) -> list[tuple[str, str]]:
    return [(segment.kind, segment.text) for segment in protect(text)[1]]


@pytest.mark.parametrize("text", SAMPLES)
def test_identity_translator_gives_the_text_back_without_problems(text):
    masked, segments = protect(text)
    assert restore(masked, segments) == (text, [])


def test_arabic_keeps_url_and_email_without_arabic_punctuation():
    masked, _ = protect(ARABIC_URL)
    assert kinds_and_texts(ARABIC_URL) == [(KIND_URL, "https://example.org/ar/page?id=3"),
                                           (KIND_EMAIL, "info@example.org")]
    assert masked == "زر الموقع <x0/>، ثم اكتب إلى <x1/>؟"


def test_chinese_inline_code_placeholder_and_url_run_on_into_chinese():
    assert kinds_and_texts(CHINESE_CODE) == [(KIND_INLINE_CODE, "`print()`"), (KIND_PLACEHOLDER, "{name}"),
                                             (KIND_URL, "https://docs.python.org/3/")]


def test_hindi_formulas_protected_but_prices_percentages_and_numbers_left_to_the_translator():
    assert kinds_and_texts(HINDI_FORMULA) == [
        (KIND_INLINE_MATH, "$E = mc^2$"), (KIND_INLINE_MATH, "\\(a^2+b^2=c^2\\)"),
        (KIND_PLACEHOLDER, "%s"), (KIND_PLACEHOLDER, "%(count)d"),
    ]
    masked, _ = protect(HINDI_FORMULA)
    assert "$5 और $10" in masked and "50% छूट" in masked


def test_markdown_blocks_tags_and_literal_masks():
    segments = protect(MARKDOWN)[1]
    assert [(s.kind, s.block) for s in segments] == [
        (KIND_CODE_BLOCK, True), (KIND_HTML_TAG, False), (KIND_HTML_TAG, False), (KIND_HTML_TAG, False),
        (KIND_HTML_TAG, False), (KIND_DISPLAY_MATH, True), (KIND_PLACEHOLDER, False), (KIND_MASK_LIKE, False),
        (KIND_INLINE_CODE, False),
    ]
    # The URL inside the code block stays in the block; "x<y and y>z" is prose, not a tag.
    assert segments[0].text.endswith("# see https://a.org\n```")
    assert "x<y and y>z" in protect(MARKDOWN)[0]


def test_translator_changes_tolerated_spacing_case_fullwidth_pairs_and_order():
    text = "Run `ls` then open https://a.org and type {name}."
    masked, segments = protect(text)
    assert masked == "Run <x0/> then open <x1/> and type <x2/>."
    # A translator that reorders, adds spaces, changes case, uses full-width brackets, writes an element pair.
    translated = "Andika < X2 / >, fungua ＜x1／＞ kisha endesha <x0></x0>."
    assert restore(translated, segments) == ("Andika {name}, fungua https://a.org kisha endesha `ls`.", [])
    assert restore("Endesha <x0> <x1> <x2>", segments) == ("Endesha `ls` https://a.org {name}", [])


def test_block_segment_put_back_on_its_own_lines_when_the_translator_joined_them():
    text = "Run this:\n```sh\nls -la\n```\nThen stop."
    masked, segments = protect(text)
    assert masked == "Run this:\n<x0/>\nThen stop."
    restored, problems = restore("Endesha hii: <x0/> Kisha simama.", segments)
    assert problems == []
    assert "\n```sh\nls -la\n```\n" in restored
    # An inline segment is never moved onto lines of its own.
    assert restore("a <x0/> b", [Segment(0, KIND_INLINE_CODE, "`x`")]) == ("a `x` b", [])


def test_problems_reported_missing_duplicated_mangled_unknown():
    text = "Open https://a.org, run `make`, write to me@b.org."
    masked, segments = protect(text)
    assert masked == "Open <x0/>, run <x1/>, write to <x2/>."
    restored, problems = restore("Fungua <x0/> <x0/>, endesha x1/>, andika <x7/>.", segments)
    found = {(problem.kind, problem.index) for problem in problems}
    assert found == {(PROBLEM_DUPLICATED, 0), (PROBLEM_MISSING, 1), (PROBLEM_MANGLED, 1), (PROBLEM_MISSING, 2),
                     (PROBLEM_UNKNOWN, 7)}
    # Nothing is dropped silently: the debris and the unknown mask stay in the text for a reviewer to see.
    assert restored == "Fungua https://a.org https://a.org, endesha x1/>, andika <x7/>."
    assert all(problem.detail for problem in problems)


def test_unclosed_mask_is_mangled_and_missing():
    masked, segments = protect("Type `q` to quit.")
    _, problems = restore("Andika <x0 kuacha.", segments)
    assert {(p.kind, p.index) for p in problems} == {(PROBLEM_MISSING, 0), (PROBLEM_MANGLED, 0)}


def test_segments_survive_a_round_trip_through_json_dicts():
    _, segments = protect(MARKDOWN)
    assert [Segment.from_dict(segment.as_dict()) for segment in segments] == segments


def test_translatable_parts_leave_block_lines_out_and_join_back():
    masked, _ = protect(MARKDOWN)
    parts = translatable_parts(masked)
    assert "".join(part for part, _ in parts) == masked
    assert [part.strip() for part, translate in parts if not translate] == ["<x0/>", "<x5/>"]
