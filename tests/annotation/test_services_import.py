import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Campaign, Item, ItemImport, JobStatus, Response
from annotation.selectors import campaign_progress
from annotation.services.assignment import lease_next
from annotation.services.imports import ImportAbandoned, ImportRefused, imports_cleanup, items_import
from annotation.stats import campaign_stats
from crossfeed.errors import InvalidInput
from tests.conftest import item_line, jsonl, new_key


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


# --- staged writing (issue 11): nothing is visible or leasable before the whole import is written ---------------


def test_items_are_staged_invisible_and_unleasable_until_the_whole_import_is_written(
    campaign, annotator, api, monkeypatch
):
    monkeypatch.setattr("annotation.services.imports.BATCH_SIZE", 4)
    seen = []

    def look(written: int) -> None:
        # Called after each batch is committed, before the import is published.
        staged = list(Item.all_objects.filter(staged_by__isnull=False).values_list("id", flat=True))
        client = api(annotator)
        seen.append({
            "written": written,
            "staged": len(staged),
            "visible": Item.objects.count(),
            "related": campaign.items.count(),
            "lease": lease_next(campaign=campaign, annotator=annotator),
            "progress": campaign_progress(campaign)["items"],
            "stats": campaign_stats(campaign)["items"],
            "next": client.get(f"/api/v1/campaigns/{campaign.id}/next/").status_code,
            "detail": client.get(f"/api/v1/items/{staged[0]}/").status_code,
            "judge": client.post(f"/api/v1/items/{staged[0]}/judgments/", {
                "ranks": {}, "idempotency_key": new_key()}, format="json").status_code,
        })

    result = items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line(f"s-{n}") for n in range(10)])),
                          progress=look)
    assert result.created == 10
    assert [row["staged"] for row in seen] == [4, 8, 10]  # after each batch of 4, and after the last one
    for row in seen:
        assert (row["visible"], row["related"], row["lease"], row["progress"], row["stats"]) == (0, 0, None, 0, 0)
        assert (row["next"], row["detail"], row["judge"]) == (204, 404, 404)
    assert Item.objects.count() == 10 and not Item.all_objects.filter(staged_by__isnull=False).exists()
    assert lease_next(campaign=campaign, annotator=annotator) is not None
    assert ItemImport.objects.get().status == JobStatus.SUCCEEDED


def test_an_import_failing_in_its_middle_leaves_nothing_visible_and_nothing_staged(campaign, monkeypatch):
    monkeypatch.setattr("annotation.services.imports.BATCH_SIZE", 3)
    run(campaign, [item_line("kept")])

    def fail_after_two_batches(written: int) -> None:
        if written >= 6:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line(f"f-{n}") for n in range(12)])),
                     progress=fail_after_two_batches)
    assert list(Item.all_objects.values_list("external_id", flat=True)) == ["kept"]
    assert Response.objects.count() == 3
    failed = ItemImport.objects.get(status=JobStatus.FAILED)
    assert "disk full" in failed.error and failed.finished_at is not None


def test_an_item_leased_while_its_new_version_is_staged_refuses_the_whole_import(campaign, annotator):
    run(campaign, [item_line("a")])

    def lease_meanwhile(written: int) -> None:
        assert lease_next(campaign=campaign, annotator=annotator) is not None

    with pytest.raises(InvalidInput, match="received a lease or judgment during the import"):
        items_import(campaign=campaign, progress=lease_meanwhile,
                     source=io.BytesIO(jsonl([item_line("b"), item_line("a", responses=["changed", "texts"])])))
    item = Item.all_objects.get()
    assert item.external_id == "a" and item.lease_count == 1 and "changed" not in item.responses.values_list(
        "text", flat=True)


def test_staged_items_take_the_overlap_an_admin_set_while_they_were_written(campaign, monkeypatch):
    from annotation.services.campaigns import campaign_update

    monkeypatch.setattr("annotation.services.imports.BATCH_SIZE", 2)

    def raise_k(written: int) -> None:
        if written == 2:
            campaign_update(campaign=Campaign.objects.get(pk=campaign.pk), overlap=5)

    items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line(f"k-{n}") for n in range(5)])),
                 progress=raise_k)
    assert set(Item.objects.values_list("target", flat=True)) == {5}


def test_an_import_the_clean_up_took_for_dead_publishes_nothing(campaign, monkeypatch):
    monkeypatch.setattr("annotation.services.imports.BATCH_SIZE", 2)

    def cleanup_elsewhere(written: int) -> None:
        ItemImport.objects.update(status=JobStatus.FAILED)  # what imports_cleanup in another process would do

    with pytest.raises(ImportAbandoned):
        items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line(f"d-{n}") for n in range(5)])),
                     progress=cleanup_elsewhere)
    assert Item.all_objects.count() == 0


def stage_as_dead_import(campaign, owner: str, external_ids: list[str], *, heartbeat_age_s: int = 0) -> ItemImport:
    """What a killed import leaves behind: a running record and staged rows (tests/test_hardening_imports.py kills
    a real one)."""
    dead = ItemImport.objects.create(campaign=campaign, owner=owner,
                                     heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age_s))
    for external_id in external_ids:
        item = Item.all_objects.create(
            campaign=campaign, external_id=external_id, prompt_text="staged", prompt_language_id="sw",
            response_language_id="ta", content_hash="0" * 64, target=campaign.overlap, staged_by=dead,
        )
        Response.objects.bulk_create([Response(item=item, position=n, text=f"r{n}", language_id="ta")
                                      for n in range(2)])
    return dead


def test_rows_staged_by_a_dead_import_never_block_importing_the_same_ids(campaign):
    # Another host's import: its process cannot be checked from here and its heartbeat is fresh, so the clean-up
    # leaves it alone; the re-import goes through all the same.
    dead = stage_as_dead_import(campaign, "another-host:4242", ["a", "b"])
    assert run(campaign, [item_line("a"), item_line("b")]).as_dict() == {"created": 2, "updated": 0, "unchanged": 0}
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["a", "b"]
    assert Item.all_objects.filter(staged_by=dead).count() == 2


def test_the_clean_up_deletes_what_dead_imports_staged_and_spares_live_ones(campaign, settings):
    import os
    import socket

    settings.CROSSFEED = {**settings.CROSSFEED, "IMPORT_STALE_SECONDS": 600}
    silent = stage_as_dead_import(campaign, "another-host:1", ["old-1", "old-2"], heartbeat_age_s=601)
    gone = stage_as_dead_import(campaign, f"{socket.gethostname()}:{_ended_pid()}", ["gone-1"])
    live = stage_as_dead_import(campaign, f"{socket.gethostname()}:{os.getpid()}", ["live-1"])
    elsewhere = stage_as_dead_import(campaign, "another-host:2", ["busy-1"], heartbeat_age_s=30)
    assert imports_cleanup() == 2
    assert set(Item.all_objects.values_list("external_id", flat=True)) == {"live-1", "busy-1"}
    assert Response.objects.filter(item__external_id__in=["old-1", "old-2", "gone-1"]).count() == 0
    statuses = dict(ItemImport.objects.values_list("id", "status"))
    assert statuses == {silent.pk: JobStatus.FAILED, gone.pk: JobStatus.FAILED, live.pk: JobStatus.RUNNING,
                        elsewhere.pk: JobStatus.RUNNING}
    assert "process ended" in ItemImport.objects.get(pk=gone.pk).error
    call_command("cleanup_imports", stdout=io.StringIO())  # nothing left to do: idempotent
    assert Item.all_objects.count() == 2


def _ended_pid() -> int:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


# --- error answers of bounded size -----------------------------------------------------------------------------


def test_errors_are_capped_to_the_first_by_line_and_all_are_counted(campaign, settings):
    settings.CROSSFEED = {**settings.CROSSFEED, "MAX_IMPORT_ERRORS": 3}
    run(campaign, [item_line("x2"), item_line("x4")])
    Item.objects.update(lease_count=1)  # as if annotators held them: their content may not change any more
    # Lines 2 and 4 change leased items: those errors are found at the end of their batch, after lines 5–30.
    lines = [item_line("ok1"), item_line("x2", responses=["new", "text"]), item_line("ok3"),
             item_line("x4", responses=["new", "text"])] + ["not an object"] * 26
    with pytest.raises(ImportRefused) as caught:
        run(campaign, lines)
    refused = caught.value
    assert [error["line"] for error in refused.errors] == [2, 4, 5]
    assert refused.error_count == 28 and refused.truncated
    assert refused.as_dict() == {"detail": refused.message, "errors": refused.errors, "error_count": 28,
                                 "truncated": True}
    assert refused.message.startswith("28 problem(s) in the import (first 3 shown)")
    assert isinstance(refused, InvalidInput)
