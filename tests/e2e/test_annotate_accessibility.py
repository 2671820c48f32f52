"""The annotator's pages for keyboard and screen-reader users: skip link, titles, the shortcuts dialog and its
off switch, one live region for notices, names per response, text direction from the text, a phone's width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Judgment
from tests.conftest import item_line
from tests.e2e.test_annotate_browser import CARDS, open_workspace, rank_with_keyboard

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def test_it_offers_a_skip_link_first(page_as, annotator, campaign, items):
    page = page_as(annotator)
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_it_gives_each_page_its_own_title(page_as, annotator, campaign, items):
    page = page_as(annotator)
    titles = set()
    for path in ("/", f"/campaigns/{campaign.id}/annotate/", f"/campaigns/{campaign.id}/mine/"):
        page.goto(path)
        titles.add(page.title())
    assert len(titles) == 3, titles


def test_it_names_each_rank_list_and_flag_group_by_letter(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    expect(page.get_by_label("Rank of response B")).to_have_attribute("data-rank-for", order[1])
    expect(page.get_by_role("group", name="Flags for response C")).to_be_visible()


def test_it_opens_the_shortcuts_as_a_dialog_that_escape_closes(page_as, annotator, campaign, items):
    page = page_as(annotator)
    open_workspace(page, campaign)
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('shortcuts').contains(document.activeElement)")
    page.keyboard.press("1")  # keys go to the dialog, not to the ranking behind it
    assert page.input_value(f"{CARDS} select >> nth=0") == ""
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator('.annotate-head [data-toggle="shortcuts"]')).to_have_attribute("aria-expanded", "false")


def test_it_lets_the_annotator_turn_single_key_shortcuts_off(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    page.keyboard.press("?")
    page.uncheck("#shortcuts-enabled")
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    assert page.input_value(f'select[data-rank-for="{order[0]}"]') == ""
    page.reload()  # the choice is kept
    page.wait_for_selector(CARDS)
    page.keyboard.press("1")
    assert page.input_value(f'select[data-rank-for="{order[0]}"]') == ""


def test_it_announces_saved_in_one_live_region(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    rank_with_keyboard(page, len(order))
    with page.expect_response(lambda response: "/submit/" in response.url):
        page.keyboard.press("Enter")
    expect(page.locator("#status[role=status]")).to_contain_text("Saved")
    assert page.locator("[role=status]").count() == 1
    assert Judgment.objects.filter(annotator=annotator).count() == 1


def test_it_lays_out_english_inside_an_arabic_response_left_to_right(page_as, make_annotator, campaign,
                                                                      import_items):
    reader = make_annotator("arabic3", ["ar"], ["sw"])
    import_items(campaign, [item_line("mixed-1", response_lang="ar",
                                      responses=["The sky is blue.", "السماء زرقاء.", "لا أعرف."])])
    page = page_as(reader)
    open_workspace(page, campaign)
    english = page.locator(f"{CARDS} .text", has_text="The sky is blue.")
    expect(english).to_have_attribute("lang", "ar")
    assert english.evaluate("el => getComputedStyle(el).direction") == "ltr"
    arabic = page.locator(f"{CARDS} .text", has_text="السماء زرقاء.")
    assert arabic.evaluate("el => getComputedStyle(el).direction") == "rtl"


@pytest.mark.parametrize("path", ["/", "annotate", "mine"])
def test_it_never_scrolls_sideways_on_a_phone(page_as, annotator, campaign, items, path):
    page = page_as(annotator, viewport=PHONE)
    if path == "annotate":
        open_workspace(page, campaign)
    else:
        page.goto(path if path == "/" else f"/campaigns/{campaign.id}/{path}/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path}: page is {width} px wide on a {PHONE['width']} px screen"
    logout = page.get_by_role("button", name="Log out")
    colour, background = logout.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el.closest('.topbar')).backgroundColor]")
    assert colour != background


def test_it_serves_a_favicon(page_as, annotator):
    page = page_as(annotator)
    response = page.request.get("/favicon.ico")
    assert response.status == 200
    assert "svg" in response.headers["content-type"]


def test_it_shows_the_lease_time_in_the_annotators_zone_with_the_zone_named(page_as, annotator, campaign, items):
    page = page_as(annotator, timezone_id="Asia/Kolkata", locale="en-GB")
    open_workspace(page, campaign)
    shown = page.locator("time[data-local]").first.inner_text()
    assert "GMT+5:30" in shown or "IST" in shown, shown
