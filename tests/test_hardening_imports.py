"""Issue 11, imports: a large import never holds the write lock for long, stays all or nothing when its process is
killed, and answers with a bounded list of errors.

The first two tests run real concurrency against the SQLite file: threads with connections of their own, and a
child process that is killed with SIGKILL in the middle of an import. bench/import_bench.py measures the same
thing at the issue's size (150,000 items, annotators through gunicorn) and prints the figures.
"""

from __future__ import annotations

import io
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from annotation.models import Item, ItemImport, JobStatus, Judgment, Response
from annotation.services.assignment import lease_next
from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from annotation.services.judgments import judgment_submit
from tests.annotation.test_concurrency import run_threads
from tests.conftest import item_line, jsonl, new_key, ranks_for

ROOT = Path(__file__).resolve().parent.parent
# Items in the concurrent import: ~20 staging transactions, well under a minute on a busy two-core machine.
IMPORT_ITEMS = 12_000
# The issue's target for annotators' calls during an import, on SQLite.
P99_LIMIT_S = 1.0
JOIN_TIMEOUT_S = 300


@pytest.mark.django_db(transaction=True)
def test_annotators_keep_annotating_while_a_large_import_is_written(admin_user, make_annotator):
    campaign = campaign_create(name="Busy", created_by=admin_user, overlap=4)
    items_import(campaign=campaign, source=[item_line(f"old-{n}") for n in range(1000)])
    old_ids = set(Item.objects.values_list("id", flat=True))
    annotators = [make_annotator(f"busy{n}", ["ta"], ["sw"]) for n in range(4)]
    source = jsonl([item_line(f"new-{n}", n=4) for n in range(IMPORT_ITEMS)])
    written: list[float] = []  # when each staging batch had been committed
    finished = threading.Event()

    def importer():
        try:
            return items_import(campaign=campaign, source=io.BytesIO(source),
                                progress=lambda _count: written.append(time.monotonic()))
        finally:
            finished.set()

    def annotate(user) -> dict:
        seen: dict = {"latency": [], "submitted": [], "leased": []}
        while not finished.is_set():
            start = time.perf_counter()
            lease = lease_next(campaign=campaign, annotator=user)
            seen["latency"].append(time.perf_counter() - start)
            if lease is None:
                time.sleep(0.02)
                continue
            seen["leased"].append((time.monotonic(), lease.item_id))
            ranks = ranks_for(Item.objects.get(pk=lease.item_id))
            start = time.perf_counter()
            judgment_submit(annotator=user, item_id=lease.item_id, ranks=ranks, idempotency_key=new_key())
            seen["latency"].append(time.perf_counter() - start)
            seen["submitted"].append(time.monotonic())
        return seen

    result, *work = run_threads([importer, *(lambda user=user: annotate(user) for user in annotators)],
                                timeout=JOIN_TIMEOUT_S)

    assert result.created == IMPORT_ITEMS
    assert Item.objects.filter(campaign=campaign).count() == 1000 + IMPORT_ITEMS
    first_batch, last_batch = written[0], written[-1]
    # Judgments committed between the first and the last staging batch: with one long transaction there are none.
    during = sum(first_batch < at < last_batch for seen in work for at in seen["submitted"])
    latency = sorted(value for seen in work for value in seen["latency"])
    p99 = statistics.quantiles(latency, n=100, method="inclusive")[98]
    print(f"{during} judgments while the import wrote; {len(latency)} calls, p99 {p99 * 1000:.0f} ms, "
          f"max {latency[-1] * 1000:.0f} ms; staging took {last_batch - first_batch:.1f} s")
    assert during >= 10, during
    assert p99 < P99_LIMIT_S, p99
    # No item of the import was handed out before all of it was written.
    early = [item_id for seen in work for at, item_id in seen["leased"] if item_id not in old_ids and at <= last_batch]
    assert early == []
    assert Judgment.objects.count() == sum(len(seen["submitted"]) for seen in work)


IMPORT_THEN_HANG = """
import sys, time, django
django.setup()
from annotation.models import Campaign
from annotation.services.imports import items_import

def hang(count):
    print(f"written {count}", flush=True)
    time.sleep(600)  # killed here, its first batch staged and the rest unwritten

with open(sys.argv[2], "rb") as source:
    items_import(campaign=Campaign.objects.get(pk=int(sys.argv[1])), source=source, progress=hang)
"""


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_in_its_middle_shows_nothing_and_its_rows_are_cleaned_up(admin_user, tmp_path):
    campaign = campaign_create(name="Killed", created_by=admin_user, overlap=2)
    path = tmp_path / "items.jsonl"
    path.write_bytes(jsonl([item_line(f"k-{n}") for n in range(2500)]))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
           "DJANGO_SETTINGS_MODULE": "crossfeed.settings", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING",
           "CROSSFEED_VAR_DIR": str(tmp_path / "var")}
    child = subprocess.Popen([sys.executable, "-c", IMPORT_THEN_HANG, str(campaign.pk), str(path)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        # Other lines may come first (a library's start-up banner); EOF means the child failed.
        lines = iter(child.stdout.readline, "")
        assert next((line.strip() for line in lines if line.startswith("written")), None) == "written 1000"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    assert Item.objects.count() == 0  # nothing visible: not in next, stats, exports or the admin
    assert Item.all_objects.filter(staged_by__isnull=False).count() == 1000
    assert ItemImport.objects.get().status == JobStatus.RUNNING  # as the killed process left it

    call_command("cleanup_imports", stdout=io.StringIO())
    assert Item.all_objects.count() == 0 and Response.objects.count() == 0
    assert ItemImport.objects.get().status == JobStatus.FAILED

    with path.open("rb") as source:
        assert items_import(campaign=campaign, source=source).created == 2500


# --- error answers of bounded size -----------------------------------------------------------------------------


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


def test_the_api_lists_the_first_100_errors_and_counts_them_all(admin_api, campaign):
    response = admin_api.post(f"/api/v1/campaigns/{campaign.id}/items/", data=[{"external_id": "x"}] * 250,
                              format="json")
    assert response.status_code == 400
    body = response.json()
    # Two problems per line (no prompt, no responses): lines 1–50 are listed.
    assert body["error_count"] == 500 and body["truncated"] is True and len(body["errors"]) == 100
    assert all(set(error) == {"line", "field", "message"} for error in body["errors"])
    assert [error["line"] for error in body["errors"]] == sorted(error["line"] for error in body["errors"])
    assert body["errors"][0]["line"] == 1 and body["errors"][-1]["line"] == 50
    assert body["detail"].startswith("500 problem(s) in the import (first 100 shown)")
    assert not Item.all_objects.exists()


def test_a_short_error_list_is_whole_and_says_so(admin_api, campaign):
    response = admin_api.post(f"/api/v1/campaigns/{campaign.id}/items/",
                              data=[item_line("ok"), item_line("bad", response_lang="xx")], format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["error_count"], body["truncated"], len(body["errors"])) == (3, False, 3)


def test_the_admin_import_page_shows_the_first_100_problems_and_the_count(client, admin_user, campaign):
    client.force_login(admin_user)
    upload = io.BytesIO(b"[]\n" * 150)
    upload.name = "bad.jsonl"
    response = client.post(reverse("admin:annotation_campaign_import", args=[campaign.id]), {"file": upload})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The first 100 of 150 problems" in page
    assert page.count("<tr><td>") == 100
    assert not Item.all_objects.exists()


def test_the_command_prints_the_first_100_problems_and_how_many_more(campaign, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"42\n" * 130)
    errors = io.StringIO()
    with pytest.raises(Exception, match="130 problem"):
        call_command("import_items", str(campaign.id), str(path), stderr=errors, verbosity=0)
    lines = errors.getvalue().splitlines()
    assert len(lines) == 101 and lines[-1].endswith("30 more problem(s) not listed; fix these and run it again")


def test_the_admin_lists_and_counts_no_staged_item_and_shows_the_imports(client, admin_user, campaign, import_items):
    import_items(campaign, [item_line("shown")])
    running = ItemImport.objects.create(campaign=campaign, owner="another-host:1")
    staged = Item.all_objects.create(campaign=campaign, external_id="staged-7", prompt_text="p", target=2,
                                     prompt_language_id="sw", response_language_id="ta", content_hash="0" * 64,
                                     staged_by=running)
    Response.objects.create(item=staged, position=0, text="staged response", language_id="ta")
    client.force_login(admin_user)
    items = client.get(reverse("admin:annotation_item_changelist")).content.decode()
    assert "shown" in items and "staged-7" not in items and "1 item" in items
    responses = client.get(reverse("admin:annotation_response_changelist")).content.decode()
    assert "3 responses" in responses and "staged response" not in responses
    assert client.get(reverse("admin:annotation_item_change", args=[staged.pk])).status_code == 302  # not found
    imports = client.get(reverse("admin:annotation_itemimport_changelist"))
    assert imports.status_code == 200 and "running" in imports.content.decode()
