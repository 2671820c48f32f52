"""instructions/formats.py: each format accepted, each bad input refused with its line and field. Pure: no database."""

from __future__ import annotations

import io
import json

import pytest

from instructions.formats import ALPACA, MAX_TURNS, MESSAGES, Limits, check_file, iter_records

LIMITS = Limits(max_prompt_chars=200, max_response_chars=300, max_line_bytes=2000, max_array_bytes=10_000,
                max_errors=5)


def jsonl(*rows) -> bytes:
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows).encode("utf-8") + b"\n"


def check(raw: bytes, limits: Limits = LIMITS):
    return check_file(io.BytesIO(raw), limits)


def errors_of(raw: bytes, limits: Limits = LIMITS) -> list[tuple[int, str]]:
    return [(error.line, error.field) for error in check(raw, limits).errors]


def chat(*turns: tuple[str, str]) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


ALPACA_ROW = {"instruction": "Name a colour.", "output": "Blue."}
CHAT_ROW = chat(("user", "Hi"), ("assistant", "Hello!"))


def records(raw: bytes):
    return [record for _line, record, _errors in iter_records(io.BytesIO(raw), LIMITS)]


def test_it_reads_alpaca_jsonl_with_and_without_input():
    raw = jsonl(ALPACA_ROW, {"instruction": "Add.", "input": "2 + 3", "output": "5", "id": 7,
                             "metadata": {"source": "hand"}})
    checked = check(raw)
    assert (checked.format, checked.rows, checked.error_count) == (ALPACA, 2, 0)
    first, second = records(raw)
    assert first.messages == [{"role": "user", "content": "Name a colour."}, {"role": "assistant",
                                                                              "content": "Blue."}]
    assert (first.external_id, first.input) == ("", "")
    assert second.messages[0]["content"] == "Add.\n\n2 + 3"
    assert (second.external_id, second.input, second.metadata) == ("7", "2 + 3", {"source": "hand"})


def test_it_reads_an_alpaca_json_array_and_names_each_element_by_its_line():
    raw = b'\xef\xbb\xbf[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c",\n   "output": ""}\n]\n'
    assert [(error.line, error.field) for error in check(raw).errors] == [(3, "output")]
    good = json.dumps([ALPACA_ROW] * 3, indent=2).encode()
    assert (check(good).format, check(good).rows) == (ALPACA, 3)


def test_it_reads_trl_messages_with_an_optional_system_turn():
    raw = jsonl(CHAT_ROW, chat(("system", "Be brief."), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"),
                               ("assistant", "A2")))
    checked = check(raw)
    assert (checked.format, checked.rows, checked.error_count) == (MESSAGES, 2, 0)
    assert records(raw)[1].messages[0] == {"role": "system", "content": "Be brief."}
    assert records(raw)[1].instruction == ""


def test_it_names_the_line_of_bad_json():
    assert errors_of(jsonl(ALPACA_ROW, "{not json", ALPACA_ROW)) == [(2, "")]
    assert errors_of(b'[{"instruction": "a", "output": "b"},\n {"instruction": ,}]') == [(2, "")]
    assert errors_of(b'[{"instruction": "a", "output": "b"} {"instruction": "a", "output": "b"}]') == [(1, "")]
    assert errors_of(b'[{"instruction": "a", "output": "b"}] trailing') == [(1, "")]


def test_it_refuses_a_missing_instruction_or_output():
    assert errors_of(jsonl({"output": "x"}, {"instruction": "y"}, {"input": "z"})) == [
        (1, "instruction"), (2, "output"), (3, "")]


@pytest.mark.parametrize("row, field", [
    ({"instruction": 3, "output": "x"}, "instruction"),
    ({"instruction": "x", "input": ["a"], "output": "x"}, "input"),
    ({"instruction": "x", "output": {"text": "y"}}, "output"),
    ({"instruction": "x", "output": "y", "id": True}, "id"),
    ({"instruction": "x", "output": "y", "id": "has space"}, "id"),
    ({"instruction": "x", "output": "y", "metadata": []}, "metadata"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}, ["assistant", "y"]]}, "messages[1]"),
    ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]}, "messages[0].content"),
    ({"messages": [{"role": "human", "content": "x"}, {"role": "assistant", "content": "y"}]}, "messages[0].role"),
    ("\"just a string\"", ""),
])
def test_it_refuses_wrong_types_naming_the_field(row, field):
    assert errors_of(jsonl(row)) == [(1, field)]


def test_it_refuses_unknown_fields():
    assert errors_of(jsonl({**ALPACA_ROW, "ouput": "x"})) == [(1, "ouput")]
    assert errors_of(jsonl({**CHAT_ROW, "instruction": "x"})) == [(1, "instruction")]
    assert errors_of(jsonl(chat(("user", "x"), ("assistant", "y")) | {
        "messages": [{"role": "user", "content": "x", "name": "bob"}, {"role": "assistant", "content": "y"}]})) == [
        (1, "messages[0].name")]


@pytest.mark.parametrize("raw", [b"", b"\n \n", b"\xef\xbb\xbf", b"[]", b"  [ \n ] \n"])
def test_it_refuses_an_empty_file(raw):
    checked = check(raw)
    assert (checked.rows, [(error.line, error.message) for error in checked.errors]) == (0, [(0, "empty file: "
                                                                                                 "no records")])


def test_it_refuses_mixed_formats_in_one_file():
    checked = check(jsonl(ALPACA_ROW, CHAT_ROW, ALPACA_ROW))
    assert [(error.line, error.field) for error in checked.errors] == [(2, "")]
    assert "one set holds one format" in checked.errors[0].message


@pytest.mark.parametrize("turns, field", [
    ((("assistant", "a"), ("user", "b")), "messages[0].role"),
    ((("user", "a"), ("user", "b")), "messages[1].role"),
    ((("user", "a"), ("system", "b"), ("assistant", "c")), "messages[1].role"),
    ((("system", "s"), ("assistant", "a"), ("user", "b")), "messages[1].role"),
    ((("user", "a"), ("assistant", "b"), ("user", "c")), "messages"),
    ((("user", "a"),), "messages"),
])
def test_it_refuses_turns_out_of_order(turns, field):
    assert errors_of(jsonl(chat(*turns))) == [(1, field)]


def test_it_refuses_too_many_turns():
    turns = [("user", "q"), ("assistant", "a")] * (MAX_TURNS // 2 + 1)
    assert errors_of(jsonl(chat(*turns)), Limits(max_line_bytes=100_000)) == [(1, "messages")]


def test_it_refuses_lone_surrogates_and_nul_characters():
    raw = jsonl('{"instruction": "a\\ud800", "output": "b"}', '{"instruction": "a", "output": "b\\u0000"}',
                '{"instruction": "a", "output": "b", "metadata": {"k": "\\udfff"}}',
                '{"instruction": "a", "output": "b", "\\ud800": 1}',
                '{"instruction": "a", "output": "\\ud83d\\ude00"}')  # a pair is one character: fine
    checked = check(raw)
    assert [(error.line, error.field) for error in checked.errors] == [(1, "instruction"), (2, "output"),
                                                                      (3, "metadata"), (4, "\\ud800")]
    assert "U+D800" in checked.errors[0].message
    json.dumps([error.as_dict() for error in checked.errors]).encode("utf-8")  # the answer encodes


def test_it_refuses_texts_and_lines_that_are_too_long():
    raw = jsonl({"instruction": "x" * 201, "output": "y"}, {"instruction": "x", "output": "y" * 301},
                {"instruction": "x", "output": "y" * 2100})
    assert errors_of(raw) == [(1, "instruction"), (2, "output"), (3, "")]
    assert errors_of(jsonl(chat(("system", "s" * 201), ("user", "u"), ("assistant", "a" * 301)))) == [
        (1, "messages[0].content"), (1, "messages[2].content")]


def test_it_refuses_an_array_file_over_its_size_limit():
    raw = json.dumps([ALPACA_ROW] * 500).encode()
    assert len(raw) > LIMITS.max_array_bytes
    checked = check(raw)
    assert [(error.line, error.field) for error in checked.errors] == [(0, "")]
    assert "JSONL" in checked.errors[0].message


def test_it_refuses_invalid_utf8_and_deep_nesting():
    assert errors_of(b'{"instruction": "\xff", "output": "b"}\n') == [(1, "")]
    assert errors_of(b'[{"instruction": "a", "output": "b"},\n{"instruction": "\xff"}]') == [(2, "")]
    deep = b"[" * 5000 + b"]" * 5000
    assert errors_of(deep, Limits()) == [(1, "")]


def test_it_refuses_a_repeated_id():
    raw = jsonl({**ALPACA_ROW, "id": "a"}, {**ALPACA_ROW, "id": "b"}, {**ALPACA_ROW, "id": "a"})
    checked = check(raw)
    assert [(error.line, error.field) for error in checked.errors] == [(3, "id")]
    assert "line 1" in checked.errors[0].message


def test_it_counts_every_error_and_keeps_the_first():
    checked = check(jsonl(*[{"instruction": ""}] * 20))
    assert checked.error_count == 40  # an empty instruction and a missing output on each line
    assert [error.line for error in checked.errors] == [1, 1, 2, 2, 3]
