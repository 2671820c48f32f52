"""The "Detected: …" hint in a real browser: shown on the response a machine found in another language, with its
wrong-language flag ticked; the annotator clears it or leaves it, and the stored judgment says which. Readable in
English and Arabic (right to left), on a wide screen and a phone, by axe's rules."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from annotation.models import AnnotatorProfile, Item, Judgment
from tests.conftest import item_line
from tests.e2e.test_annotate_browser import CARDS, open_workspace
from tests.e2e.test_axe import AXE_OPTIONS, VIEWPORTS

pytestmark = pytest.mark.e2e

ENGLISH = "The sky is blue because the air scatters blue light more than red light."
TAMIL = ["வானம் நீலமாக இருப்பதற்குக் காரணம் ஒளிச் சிதறல்.", "கடல் வானத்தின் நிறத்தைப் பிரதிபலிக்கிறது."]


@pytest.fixture
def hinted_item(campaign, import_items) -> Item:
    line = item_line("gen-sw-ta-1", responses=[ENGLISH, *TAMIL])
    line["responses"][0].update(detected_language="en", detected_confidence=0.97)
    line["responses"][1].update(detected_language="ta", detected_confidence=0.99)
    import_items(campaign, [line])
    return Item.objects.get(external_id="gen-sw-ta-1")


def english_id(item: Item) -> str:
    return str(item.responses.get(text=ENGLISH).id)


def card_of(page, text: str):
    return page.locator(CARDS, has_text=text)


def wrong_language_box(card):
    return card.locator('input[type=checkbox][value="wrong_language"]')


def rank_and_submit(page, order: list[str]) -> None:
    for rank, response_id in enumerate(order, start=1):
        page.select_option(f'select[data-rank-for="{response_id}"]', str(rank))
    with page.expect_response(lambda response: "/submit/" in response.url) as submitted:
        page.click("#judgment-form button[type=submit]")
    assert submitted.value.status == 200
    expect(page.locator("#workspace .notice")).to_be_visible()


def test_it_shows_the_hint_only_where_the_language_differs(page_as, annotator, campaign, hinted_item):
    page = page_as(annotator)
    open_workspace(page, campaign)
    english = card_of(page, ENGLISH)
    hint = english.locator(".detected-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Detected: English")
    expect(hint).to_have_attribute("title", "language identification, 97% confidence")
    # Screen readers hear it with the card and with the flag it ticked.
    expect(english).to_have_attribute("aria-describedby", f"detected-{english_id(hinted_item)}")
    expect(wrong_language_box(english)).to_have_attribute("aria-describedby", f"detected-{english_id(hinted_item)}")
    expect(wrong_language_box(english)).to_be_checked()
    for text in TAMIL:
        expect(card_of(page, text).locator(".detected-hint")).to_have_count(0)
        expect(wrong_language_box(card_of(page, text))).not_to_be_checked()


def test_the_annotator_clears_the_flag_and_none_is_stored(page_as, annotator, campaign, hinted_item):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    box = wrong_language_box(card_of(page, ENGLISH))
    box.uncheck()
    expect(box).not_to_be_checked()
    rank_and_submit(page, order)
    judgment = Judgment.objects.get(annotator=annotator, item=hinted_item)
    assert "wrong_language" not in judgment.flags.get(english_id(hinted_item), [])
    assert judgment.flags == {}


def test_the_annotator_leaves_the_flag_and_it_is_stored(page_as, other_annotator, campaign, hinted_item):
    page = page_as(other_annotator)
    order = open_workspace(page, campaign)
    expect(wrong_language_box(card_of(page, ENGLISH))).to_be_checked()
    rank_and_submit(page, order)
    judgment = Judgment.objects.get(annotator=other_annotator, item=hinted_item)
    assert judgment.flags == {english_id(hinted_item): ["wrong_language"]}


@pytest.mark.parametrize(("language", "viewport", "direction"), [("en", "wide", "ltr"), ("ar", "phone", "rtl")])
def test_the_hint_reads_well_in_both_directions(new_context, login, annotator, campaign, hinted_item, language,
                                                viewport, direction):
    AnnotatorProfile.objects.filter(user=annotator).update(ui_language=language)
    page = login(new_context(viewport=VIEWPORTS[viewport]).new_page(), annotator.get_username())
    open_workspace(page, campaign)
    hint = card_of(page, ENGLISH).locator(".detected-hint")
    expect(hint).to_be_visible()
    assert hint.evaluate("element => getComputedStyle(element).direction") == direction
    box, card = hint.bounding_box(), card_of(page, ENGLISH).bounding_box()
    assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"], (box, card)
    results = Axe().run(page, options=AXE_OPTIONS)
    problems = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
                for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not problems
