"""The demo dataset that `make run` seeds: annotation/data/demo_items.jsonl (+ demo_offtarget.json), and the gold
and qualification items of annotation/data/demo_checks.jsonl.

Mostly pure checks on the files themselves (stdlib + pytest, no database), so a broken demo line is caught before
the import service ever sees it; the last tests seed the demo and walk its annotators through the checks.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "annotation" / "data"
ITEMS_PATH = DATA_DIR / "demo_items.jsonl"
CHECKS_PATH = DATA_DIR / "demo_checks.jsonl"
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


# --- gold and qualification items (demo_checks.jsonl) -------------------------------------------------------------

CHECK_ID_RE = re.compile(r"^demo-(gold|qual)-(\d{2})-([A-Za-z-]+)$")


@pytest.fixture(scope="module")
def checks() -> list[dict]:
    with CHECKS_PATH.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _can_take(native: list[str], reads: list[str], item: dict) -> bool:
    # The leasing rule (annotation/sql.py candidate_ids): responses in a native language, and the prompt or its
    # pivot in a language the annotator reads.
    readable = {*native, *reads}
    return _pair(item)[1] in native and bool(
        {item["prompt"]["language"], item.get("pivot", {}).get("language")} & readable)


def test_the_checks_are_gold_and_qualification_items_with_answers_that_fit(checks):
    kinds = Counter("qualification" if item.get("qualification") else "gold" for item in checks)
    assert kinds["gold"] >= 10 and kinds["qualification"] >= 10, kinds
    for item in checks:
        match = CHECK_ID_RE.match(item["external_id"])
        assert match and match.group(3) == "-".join(_pair(item)), item["external_id"]
        assert (match.group(1) == "qual") == bool(item.get("qualification")), item["external_id"]
        assert ("pivot" in item) == (item["prompt"]["language"] != "en"), item["external_id"]
        gold = item["gold"]
        positions = range(len(item["responses"]))
        assert gold["best"] and all(index in positions for index in gold["best"]), item["external_id"]
        assert all(index in positions and index not in gold["best"] for index in gold.get("wrong_language", []))
        assert len({response["language"] for response in item["responses"]}) == 1, item["external_id"]
        assert all(code in ALLOWED_LANGUAGES for code in _pair(item)), item["external_id"]
    # Responses in the wrong language, to be flagged, in several pairs.
    assert len({_pair(item) for item in checks if item["gold"].get("wrong_language")}) >= 4


def test_every_demo_annotator_meets_gold_items_and_a_qualification_set(checks):
    from annotation.services.demo import DEMO_ANNOTATORS, DEMO_QUALITY

    gold_pairs = Counter(_pair(item) for item in checks if not item.get("qualification"))
    qualification_pairs = Counter(_pair(item) for item in checks if item.get("qualification"))
    # A verdict needs gold_min_seen gold items of one pair; a qualification set needs more than one item to
    # have a pass mark below 100 %.
    assert min(gold_pairs.values()) >= DEMO_QUALITY["gold_min_seen"], gold_pairs
    assert min(qualification_pairs.values()) >= 3, qualification_pairs
    for username, native, reads in DEMO_ANNOTATORS:
        theirs = [item for item in checks if _can_take(native, reads, item)]
        assert any(not item.get("qualification") for item in theirs), f"{username} meets no gold item"
        assert any(item.get("qualification") for item in theirs), f"{username} meets no qualification set"


def _answer(user, item, *, right: bool) -> None:
    """Rank the gold's best response first (and flag the wrong-language ones), or last with no flags."""
    from annotation.services.judgments import judgment_submit

    ids = [str(pk) for pk in item.responses.order_by("position").values_list("id", flat=True)]
    best = set(item.gold["best"])
    order = sorted(range(len(ids)), key=lambda position: (position not in best) == right)
    ranks = {ids[position]: rank for rank, position in enumerate(order, start=1)}
    flags = {ids[position]: ["wrong_language"] for position in item.gold.get("wrong_language", [])} if right else {}
    judgment_submit(annotator=user, item_id=item.id, ranks=ranks, flags=flags, idempotency_key=f"{user.pk}-{item.pk}")


@pytest.fixture
def demo(db, tmp_path, monkeypatch):
    """The seeded demo, with the gold draw always won (gold_rate is a chance; the test needs the outcome)."""
    from annotation.models import Campaign
    from annotation.services import assignment
    from annotation.services.demo import demo_seed

    demo_seed(var_dir=tmp_path)
    monkeypatch.setattr(assignment.random, "random", lambda: 0.0)
    return Campaign.objects.get()


def test_the_seeded_demo_campaign_runs_with_gold_and_qualification(demo):
    from annotation.models import Item
    from annotation.services.demo import DEMO_QUALITY

    assert {name: getattr(demo, name) for name in DEMO_QUALITY} == DEMO_QUALITY
    assert demo.items.filter(kind=Item.Kind.GOLD).count() >= 10
    assert len(demo.qualification_pairs) >= 5, demo.qualification_pairs


def test_each_demo_annotator_qualifies_first_and_then_meets_gold_items(demo):
    from django.contrib.auth import get_user_model

    from annotation.models import Item, QualificationResult
    from annotation.services.assignment import lease_next
    from annotation.services.demo import DEMO_ANNOTATORS

    for username, _native, _reads in DEMO_ANNOTATORS:
        user = get_user_model().objects.get(username=username)
        kinds = []
        while True:
            item = Item.objects.get(pk=lease_next(campaign=demo, annotator=user).item_id)
            kinds.append(item.kind)
            if item.kind != Item.Kind.QUALIFICATION:
                break
            _answer(user, item, right=True)
        assert kinds[0] == Item.Kind.QUALIFICATION and len(kinds) >= 4, (username, kinds)
        results = QualificationResult.objects.filter(campaign=demo, annotator=user)
        assert results and all(result.passed for result in results), username
        assert kinds[-1] == Item.Kind.GOLD, (username, kinds)


@pytest.mark.parametrize(("first_right", "state"), [(True, "warned"), (False, "excluded")])
def test_a_careless_demo_annotator_is_warned_or_excluded_by_the_gold_of_a_pair(demo, first_right, state):
    from django.contrib.auth import get_user_model

    from annotation.models import AnnotatorStanding, Item
    from annotation.services.assignment import lease_next

    user = get_user_model().objects.get(username="karthik")  # his only pair with gold (and qualification): ru→hi
    gold_judged = []
    item = Item.objects.get(pk=lease_next(campaign=demo, annotator=user).item_id)
    while item.kind != Item.Kind.TASK:
        # Qualification right; then the first gold item as the parameter says, the second wrong.
        gold = item.kind == Item.Kind.GOLD
        _answer(user, item, right=not gold or (first_right and not gold_judged))
        gold_judged += [item.external_id] if gold else []
        item = Item.objects.get(pk=lease_next(campaign=demo, annotator=user).item_id)
    assert sorted(gold_judged) == ["demo-gold-09-ru-hi", "demo-gold-10-ru-hi"]
    standing = AnnotatorStanding.objects.get(campaign=demo, annotator=user)
    assert (standing.prompt_language_id, standing.response_language_id) == ("ru", "hi")
    assert (standing.gold_seen, standing.state) == (2, state), standing.state_reason
