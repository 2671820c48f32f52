import io

import pytest

from annotation.models import Item, Response
from annotation.services.assignment import lease_next
from annotation.services.imports import items_import
from crossfeed.errors import InvalidInput
from tests.conftest import item_line, jsonl


def run(campaign, lines):
    return items_import(campaign=campaign, source=io.BytesIO(jsonl(lines)))


def test_it_imports_items_and_responses(campaign):
    result = run(campaign, [item_line("a"), item_line("b", prompt_lang="en", response_lang="ar", pivot=False)])
    assert result.as_dict() == {"created": 2, "updated": 0, "unchanged": 0}
    item = Item.objects.get(external_id="b")
    assert (item.prompt_language_id, item.response_language_id, item.pivot_language_id) == ("en", "ar", None)
    assert item.target == campaign.overlap
    assert list(item.responses.values_list("position", "model_name")) == [(0, "model-0"), (1, "model-1"),
                                                                           (2, "model-2")]


def test_reimport_creates_no_duplicates(campaign):
    run(campaign, [item_line("a"), item_line("b")])
    result = run(campaign, [item_line("a"), item_line("b"), item_line("c")])
    assert result.as_dict() == {"created": 1, "updated": 0, "unchanged": 2}
    assert Item.objects.count() == 3 and Response.objects.count() == 9


def test_reimport_updates_an_item_nobody_worked_on(campaign):
    run(campaign, [item_line("a")])
    result = run(campaign, [item_line("a", responses=["new one", "new two"])])
    assert result.as_dict() == {"created": 0, "updated": 1, "unchanged": 0}
    assert list(Item.objects.get().responses.values_list("text", flat=True)) == ["new one", "new two"]


def test_reimport_refuses_to_change_an_item_with_leases(campaign, annotator):
    run(campaign, [item_line("a")])
    assert lease_next(campaign=campaign, annotator=annotator) is not None
    with pytest.raises(InvalidInput) as caught:
        run(campaign, [item_line("b"), item_line("a", responses=["changed", "texts"])])
    assert caught.value.errors == [{"line": 2, "field": "external_id", "message": caught.value.errors[0]["message"]}]
    assert "already has judgments or leases" in caught.value.errors[0]["message"]
    assert not Item.objects.filter(external_id="b").exists()


def test_one_bad_line_stores_nothing_and_every_error_is_listed(campaign):
    lines = [item_line("ok-1"), item_line("bad-1", response_lang="xx"), item_line("ok-2"),
             {"external_id": "bad-2", "prompt": {"text": "", "language": "sw"}, "responses": []}]
    with pytest.raises(InvalidInput) as caught:
        run(campaign, lines)
    errors = caught.value.errors
    assert {(error["line"], error["field"]) for error in errors} >= {
        (2, "responses[0].language"), (4, "prompt.text"), (4, "responses")}
    assert "nothing was stored" in caught.value.message
    assert Item.objects.count() == 0


def test_duplicate_external_ids_in_one_file_are_an_error(campaign):
    with pytest.raises(InvalidInput) as caught:
        run(campaign, [item_line("a"), item_line("a")])
    assert caught.value.errors[0]["line"] == 2 and "already used on line 1" in caught.value.errors[0]["message"]


def test_invalid_utf8_and_broken_json_are_reported_by_line(campaign):
    source = io.BytesIO(jsonl([item_line("a")]) + b'{"x": "\xc3\x28"}\n{not json\n')
    with pytest.raises(InvalidInput) as caught:
        items_import(campaign=campaign, source=source)
    assert [(error["line"], error["message"][:14]) for error in caught.value.errors] == [
        (2, "not valid UTF-"), (3, "not valid JSON")]
    assert Item.objects.count() == 0


def test_an_empty_file_is_refused(campaign):
    with pytest.raises(InvalidInput, match="no items"):
        items_import(campaign=campaign, source=io.BytesIO(b"\n\n"))


def test_a_json_list_is_accepted_with_line_numbers_as_positions(campaign):
    with pytest.raises(InvalidInput) as caught:
        items_import(campaign=campaign, source=[item_line("a"), "oops"])
    assert caught.value.errors[0]["line"] == 2
    assert items_import(campaign=campaign, source=[item_line("a")]).created == 1


def test_it_imports_in_batches_larger_than_one(campaign, monkeypatch):
    monkeypatch.setattr("annotation.services.imports.BATCH_SIZE", 7)
    result = run(campaign, [item_line(f"i-{n}", n=2) for n in range(30)])
    assert result.created == 30 and Response.objects.count() == 60


def test_the_demo_file_imports(campaign):
    from annotation.services.demo import DATA

    with (DATA / "demo_items.jsonl").open("rb") as source:
        result = items_import(campaign=campaign, source=source)
    assert result.created >= 60
    pairs = set(Item.objects.values_list("prompt_language", "response_language"))
    assert len(pairs) >= 12 and {"ar", "fa", "ur"} & {response for _, response in pairs}
