import io
import json

import pytest

from annotation.item_format import Limits, check_record, iter_jsonl, parse_line

LIMITS = Limits(max_prompt_chars=100, max_response_chars=100, max_line_bytes=2000)


def good(**changes):
    value = {
        "external_id": "x-1",
        "prompt": {"text": "Eleza kwa nini anga ni la buluu.", "language": "sw"},
        "pivot": {"text": "Explain why the sky is blue.", "language": "en"},
        "responses": [{"text": "ஒன்று", "language": "ta", "model": "a"}, {"text": "இரண்டு", "language": "ta"}],
    }
    value.update(changes)
    return value


def errors_of(value):
    record, errors = check_record(value, 7, LIMITS)
    return record, {(error.field, error.message) for error in errors}


def test_it_accepts_the_architecture_example():
    record, errors = errors_of(good())
    assert errors == set()
    assert record.prompt_language == "sw" and record.response_language == "ta" and record.pivot_language == "en"
    assert [response.model for response in record.responses] == ["a", ""]


def test_it_maps_flores_codes():
    value = good(prompt={"text": "Habari", "language": "swh_Latn"})
    record, errors = errors_of(value)
    assert not errors and record.prompt_language == "sw"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"prompt": {"text": "hi", "language": "xx-unknown"}}, "prompt.language"),
        ({"prompt": {"text": "   ", "language": "sw"}}, "prompt.text"),
        ({"prompt": {"text": "x" * 101, "language": "sw"}}, "prompt.text"),
        ({"prompt": {"text": 5, "language": "sw"}}, "prompt.text"),
        ({"prompt": "just text"}, "prompt"),
        ({"responses": [{"text": "one", "language": "ta"}]}, "responses"),
        ({"responses": [{"text": str(i), "language": "ta"} for i in range(9)]}, "responses"),
        ({"responses": [{"text": "same", "language": "ta"}, {"text": "same ", "language": "ta"}]},
         "responses[1].text"),
        ({"responses": [{"text": "a", "language": "ta"}, {"text": "b", "language": "ar"}]}, "responses"),
        ({"responses": [{"text": "a", "language": "ta"}, {"text": "", "language": "ta"}]}, "responses[1].text"),
        ({"responses": [{"text": "a", "language": "ta"}, {"text": "b\x00", "language": "ta"}]}, "responses[1].text"),
        ({"responses": [{"text": "a", "language": "ta"}, {"text": "b", "language": "ta", "score": 1}]},
         "responses[1].score"),
        ({"responses": "a, b"}, "responses"),
        ({"external_id": "../../etc/passwd\n"}, "external_id"),
        ({"external_id": 17}, "external_id"),
        ({"promt": {}}, "promt"),
        ({"metadata": [1]}, "metadata"),
    ],
)
def test_it_names_the_field_of_each_problem(changes, field):
    record, errors = errors_of(good(**changes))
    assert record is None
    assert field in {f for f, _ in errors}, errors


def test_it_reports_every_problem_of_a_line_at_once():
    value = good(prompt={"text": "", "language": "zz"}, responses=[{"text": "a", "language": "qq"}])
    _, errors = errors_of(value)
    assert {"prompt.text", "prompt.language", "responses", "responses[0].language"} <= {f for f, _ in errors}


def test_it_rejects_non_objects():
    _, errors = errors_of([1, 2])
    assert errors == {("", "expected a JSON object, got a list")}


def test_it_names_an_item_without_external_id_by_its_content():
    first, _ = check_record(good(external_id=None), 1, LIMITS)
    again, _ = check_record(good(external_id=None), 2, LIMITS)
    assert first.external_id.startswith("sha256:") and first.external_id == again.external_id


def test_parse_line_reports_invalid_utf8_with_its_byte():
    value, error = parse_line(b'{"a": "\xff"}', 3)
    assert value is None and error.line == 3 and "not valid UTF-8 (byte 8" in error.message


def test_parse_line_reports_deep_nesting_instead_of_crashing():
    value, error = parse_line(b"[" * 100_000 + b"]" * 100_000, 1)
    assert value is None and "nested too deeply" in error.message


def test_parse_line_strips_a_byte_order_mark_on_the_first_line():
    value, error = parse_line(b'\xef\xbb\xbf{"a": 1}', 1)
    assert error is None and value == {"a": 1}


def test_iter_jsonl_skips_blank_lines_and_counts_lines():
    stream = io.BytesIO(b'{"a": 1}\n\n   \n{"b": 2}\nnot json\n')
    rows = list(iter_jsonl(stream, LIMITS))
    assert [(line, value) for line, value, _ in rows] == [(1, {"a": 1}), (4, {"b": 2}), (5, None)]
    assert "not valid JSON" in rows[2][2].message


def test_iter_jsonl_reports_an_oversized_line_without_reading_it_whole():
    huge = json.dumps({"x": "y" * 10_000}).encode()
    stream = io.BytesIO(b'{"a": 1}\n' + huge + b'\n{"b": 2}\n')
    rows = list(iter_jsonl(stream, LIMITS))
    assert [line for line, _, _ in rows] == [1, 2, 3]
    assert rows[1][2].message == "line is longer than 2000 bytes"
    assert rows[2][1] == {"b": 2}
