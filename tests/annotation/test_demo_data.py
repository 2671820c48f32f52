"""The demo dataset that `make run` seeds: annotation/data/demo_items.jsonl (+ demo_offtarget.json).

Pure checks on the files themselves (stdlib + pytest, no database), so a broken demo line is caught before
the import service ever sees it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "annotation" / "data"
ITEMS_PATH = DATA_DIR / "demo_items.jsonl"
OFFTARGET_PATH = DATA_DIR / "demo_offtarget.json"

ALLOWED_LANGUAGES = {
    "en", "sw", "ta", "ar", "fa", "ur", "zh-Hans", "ja", "ko", "hi", "bn",
    "th", "ru", "yo", "am", "qu", "es", "fr", "de", "tr", "vi", "id",
}  # fmt: skip
RTL_LANGUAGES = {"ar", "fa", "ur", "he"}
CJK_LANGUAGES = {"zh-Hans", "zh-Hant", "ja", "ko"}
DEMO_MODELS = {"demo-llama-2-7b-sft", "demo-bloom-7b1-sft", "demo-xllms-100", "demo-mt5-xl"}
EXTERNAL_ID_RE = re.compile(r"^demo-(\d{4})-([A-Za-z-]+)$")
XSS_ID = "demo-9000-en-ar"
XSS_SNIPPET = '<script>alert("xss")</script>'


def _load_items() -> list[tuple[int, dict]]:
    items = []
    with ITEMS_PATH.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            assert line.strip(), f"line {line_no}: blank line"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:  # pragma: no cover - reported as a failure
                pytest.fail(f"line {line_no}: not valid JSON: {exc}")
            items.append((line_no, value))
    return items


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return [value for _, value in _load_items()]


@pytest.fixture(scope="module")
def by_id(items) -> dict[str, dict]:
    return {item["external_id"]: item for item in items}


@pytest.fixture(scope="module")
def offtarget() -> list[dict]:
    with OFFTARGET_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert set(data) == {"off_target"}
    assert isinstance(data["off_target"], list)
    return data["off_target"]


def _pair(item: dict) -> tuple[str, str]:
    return item["prompt"]["language"], item["responses"][0]["language"]


def test_every_line_is_a_json_object_in_utf8():
    raw = ITEMS_PATH.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no byte order mark"
    raw.decode("utf-8")
    assert raw.endswith(b"\n")
    for line_no, value in _load_items():
        assert isinstance(value, dict), f"line {line_no}: expected an object"
    # Written with ensure_ascii=False: non-Latin scripts are stored as themselves, not \\u escapes.
    assert "\\u" not in raw.decode("utf-8")


def test_shape(items):
    for item in items:
        ext = item.get("external_id")
        assert isinstance(ext, str), item
        expected_keys = {"external_id", "prompt", "responses"}
        if item["prompt"]["language"] != "en":
            expected_keys.add("pivot")
        assert set(item) == expected_keys, ext

        prompt = item["prompt"]
        assert set(prompt) == {"text", "language"}, ext
        assert isinstance(prompt["text"], str) and prompt["text"].strip(), ext

        if "pivot" in item:
            pivot = item["pivot"]
            assert set(pivot) == {"text", "language"}, ext
            assert pivot["language"] == "en", ext
            assert isinstance(pivot["text"], str) and pivot["text"].strip(), ext
            assert pivot["text"] != prompt["text"], ext

        assert isinstance(item["responses"], list), ext
        for response in item["responses"]:
            assert set(response) == {"text", "language", "model"}, ext
            assert isinstance(response["text"], str), ext
            assert response["model"] in DEMO_MODELS, (ext, response["model"])


def test_pivot_present_exactly_when_prompt_is_not_english(items):
    for item in items:
        has_pivot = "pivot" in item
        assert has_pivot == (item["prompt"]["language"] != "en"), item["external_id"]


def test_external_ids_unique_and_well_formed(items):
    ids = [item["external_id"] for item in items]
    duplicates = [ext for ext, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates
    for item in items:
        ext = item["external_id"]
        match = EXTERNAL_ID_RE.match(ext)
        assert match, ext
        prompt_lang, response_lang = _pair(item)
        assert ext == f"demo-{match.group(1)}-{prompt_lang}-{response_lang}", ext


def test_enough_items_and_pairs(items):
    assert len(items) >= 72
    pairs = Counter(_pair(item) for item in items)
    assert len(pairs) >= 14, sorted(pairs)
    # "about five items per pair": no pair is a token one-off, none dominates.
    assert min(pairs.values()) >= 3, pairs
    assert max(pairs.values()) <= 8, pairs


def test_language_coverage(items):
    response_languages = {_pair(item)[1] for item in items}
    assert len(response_languages & RTL_LANGUAGES) >= 2, response_languages
    assert response_languages & CJK_LANGUAGES, response_languages


def test_language_codes_allowed(items):
    for item in items:
        codes = [item["prompt"]["language"], *(r["language"] for r in item["responses"])]
        if "pivot" in item:
            codes.append(item["pivot"]["language"])
        for code in codes:
            assert code in ALLOWED_LANGUAGES, (item["external_id"], code)


def test_responses_count_distinct_non_empty(items):
    counts = Counter()
    for item in items:
        ext = item["external_id"]
        texts = [r["text"] for r in item["responses"]]
        assert 2 <= len(texts) <= 4, ext
        counts[len(texts)] += 1
        assert all(t.strip() for t in texts), ext
        assert len({t.strip() for t in texts}) == len(texts), f"{ext}: responses must be distinct"
    assert len(counts) >= 2, f"vary the number of responses, got {dict(counts)}"


def test_responses_share_one_language_other_than_the_prompts(items):
    for item in items:
        ext = item["external_id"]
        languages = {r["language"] for r in item["responses"]}
        assert len(languages) == 1, (ext, languages)
        assert languages != {item["prompt"]["language"]}, ext


def test_formatting_examples_present(items):
    texts = [r["text"] for item in items for r in item["responses"]]
    code_blocks = [t for t in texts if "```" in t]
    assert code_blocks, "at least one response with a fenced code block"
    assert any("\n    " in t for t in code_blocks), "the code block keeps its indentation"
    assert any(re.search(r"^\S+[.)] ", t, re.MULTILINE) and t.count("\n") >= 2 for t in texts), "a list"


def test_offtarget_entries_point_at_existing_responses(offtarget, by_id):
    assert offtarget, "some deliberate off-target responses"
    seen = set()
    for entry in offtarget:
        assert set(entry) == {"external_id", "response_index", "actual_language"}, entry
        item = by_id.get(entry["external_id"])
        assert item is not None, entry
        index = entry["response_index"]
        assert isinstance(index, int) and 0 <= index < len(item["responses"]), entry
        assert entry["actual_language"] in ALLOWED_LANGUAGES, entry
        assert entry["actual_language"] != item["responses"][index]["language"], entry
        key = (entry["external_id"], index)
        assert key not in seen, entry
        seen.add(key)


def test_offtarget_rate_is_about_one_in_five(offtarget, items):
    flagged_items = {entry["external_id"] for entry in offtarget}
    assert len(flagged_items) == len(offtarget), "at most one off-target response per item"
    assert 0.1 <= len(flagged_items) / len(items) <= 0.3


def test_offtarget_model_names_do_not_give_it_away(offtarget, by_id):
    for entry in offtarget:
        response = by_id[entry["external_id"]]["responses"][entry["response_index"]]
        assert "off" not in response["model"].lower(), entry


def test_xss_item_present_verbatim(by_id):
    item = by_id.get(XSS_ID)
    assert item is not None
    assert item["prompt"]["language"] == "en"
    assert "pivot" not in item
    assert XSS_SNIPPET in item["prompt"]["text"]
    assert {r["language"] for r in item["responses"]} == {"ar"}
