"""The annotators' own path stays cheap as campaigns grow (issue 16): the progress row of every item shown comes from
a per-process snapshot of the campaign's counts plus the annotator's own newest rows, not from counting every item
of the campaign at each submit; texts rendered once are not rendered again."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation import rendering, views
from annotation.services.judgments import judgment_submit
from tests.conftest import new_key, ranks_for

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def snapshots(monkeypatch):
    # The fixture campaigns have 5 items; a snapshot is taken from 1,000 items on, so make these count as large.
    monkeypatch.setattr(views, "PROGRESS_SECONDS_PER_1000_ITEMS", 60_000, raising=False)


@pytest.fixture
def browser(client, annotator):
    client.force_login(annotator)
    return client


def shown(response) -> tuple[int, str, str]:
    """(item id, "N done · M left", the campaign bar's value) of a workspace answer."""
    html = response.content.decode()
    item = int(re.search(r'<form id="judgment-form"[^>]*data-item="(\d+)"', html, re.S)[1])
    mine = re.search(r"(\d+ done · \d+ left)", html)[1]
    campaign = re.search(r'<progress max="100" value="([0-9.]+)" aria-label="Campaign progress"', html)[1]
    return item, mine, campaign


def ranking(item) -> dict:
    return {**{f"rank_{key}": value for key, value in ranks_for(item).items()}, "idempotency_key": new_key()}


def submit(browser, item_id: int, item, form: dict | None = None):
    return browser.post(reverse("annotation:submit", kwargs={"item_id": item_id}), form or ranking(item), **HTMX)


def test_it_moves_the_annotators_own_numbers_at_once_and_the_others_within_the_snapshot(
        snapshots, browser, campaign, items, other_annotator):
    by_id = {item.id: item for item in items}
    item_id, mine, bar = shown(browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX))
    assert (mine, bar) == ("0 done · 5 left", "0.0")
    # Another annotator's judgment is counted in the campaign's bar only when the snapshot is taken again.
    other = next(item for item in items if item.id != item_id)
    judgment_submit(annotator=other_annotator, item_id=other.id, ranks=ranks_for(other), idempotency_key=new_key())
    item_id, mine, bar = shown(submit(browser, item_id, by_id[item_id]))
    assert (mine, bar) == ("1 done · 4 left", "10.0")  # own judgment: 1 of 10 wanted (5 items x 2)
    browser.post(reverse("annotation:skip", kwargs={"item_id": item_id}), {"reason": "offensive"}, **HTMX)
    from django.core.cache import cache

    cache.clear()  # the snapshot's time is up
    _item, mine, bar = shown(browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX))
    assert (mine, bar) == ("1 done · 3 left", "20.0")


def test_a_skip_takes_the_item_off_the_annotators_list_at_once(snapshots, browser, campaign, items):
    item_id, mine, _bar = shown(browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX))
    assert mine == "0 done · 5 left"
    _item, mine, _bar = shown(browser.post(reverse("annotation:skip", kwargs={"item_id": item_id}),
                                           {"reason": "offensive"}, **HTMX))
    assert mine == "0 done · 4 left"


def test_a_submit_counts_no_item_of_the_campaign(snapshots, browser, campaign, items):
    by_id = {item.id: item for item in items}
    item_id, _mine, _bar = shown(browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}),
                                              **HTMX))
    item_id, _mine, _bar = shown(submit(browser, item_id, by_id[item_id]))  # the annotator's base is taken here
    form = ranking(by_id[item_id])
    with CaptureQueriesContext(connection) as queries:
        item_id, mine, _bar = shown(submit(browser, item_id, by_id[item_id], form))
    assert mine == "2 done · 3 left"
    counts = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert counts == [], counts  # before: the open items and the campaign's totals, over all of its items
    assert len(queries.captured_queries) <= 27


def test_it_renders_a_text_once_and_keeps_the_cache_bounded(monkeypatch):
    monkeypatch.setattr(rendering, "_cache", type(rendering._cache)())
    monkeypatch.setattr(rendering, "_cache_characters", 0)
    monkeypatch.setattr(rendering, "CACHE_CHARACTERS", 4_000)
    first = rendering.render_markdown("Some **bold** <b>text</b>")
    assert rendering.render_markdown("Some **bold** <b>text</b>") is first
    assert first == "<p>Some <strong>bold</strong> &lt;b&gt;text&lt;/b&gt;</p>\n"
    assert rendering.render_markdown("Some **bold** <b>text</b>", line_breaks=False) is not first
    for number in range(200):
        rendering.render_markdown(f"text number {number} " * 5)
    assert sum(map(len, rendering._cache.values())) == rendering._cache_characters <= 4_000
