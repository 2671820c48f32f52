"""The annotation workspace in a real browser: keyboard ranking over htmx, right-to-left text and layout, escaping
of untrusted text, the 422 path, and two annotators feeding the admin."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Judgment, JudgmentSubmission
from annotation.services.campaigns import campaign_create
from tests.conftest import item_line

pytestmark = pytest.mark.e2e

CARDS = "#judgment-form .response"
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=2">'


def open_workspace(page, campaign) -> list[str]:
    """Open the campaign's annotate page, wait for htmx to bring the item; response ids in display order."""
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector(CARDS)
    return page.eval_on_selector_all(CARDS, "cards => cards.map(card => card.dataset.response)")


def rank_with_keyboard(page, count: int) -> None:
    # Each digit ranks the selected card and moves the selection to the next one.
    for digit in range(1, count + 1):
        page.keyboard.press(str(digit))


def test_it_serves_the_static_files(page_as, annotator):
    page = page_as(annotator)
    for path in ("/static/js/annotate.js", "/static/vendor/htmx-2.0.8/htmx.min.js", "/static/css/crossfeed.css"):
        response = page.request.get(path)
        assert response.status == 200, f"{path}: {response.status}"


def test_it_ranks_with_the_keyboard_and_loads_the_next_item_in_place(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    assert page.evaluate("typeof htmx") == "object"
    first_item = page.get_attribute("#judgment-form", "data-item")
    # A full page load would wipe this; an htmx swap keeps it.
    page.evaluate("window.__samePage = 'kept'")

    rank_with_keyboard(page, len(order))
    for rank, response_id in enumerate(order, start=1):
        assert page.input_value(f'select[data-rank-for="{response_id}"]') == str(rank)
    with page.expect_response(lambda response: response.url.endswith(f"/items/{first_item}/submit/")) as submitted:
        page.keyboard.press("Enter")
    assert submitted.value.status == 200

    page.wait_for_function(
        "old => { const form = document.getElementById('judgment-form'); return form && form.dataset.item !== old; }",
        arg=first_item,
    )
    assert page.evaluate("window.__samePage") == "kept"
    expect(page.locator("#workspace .notice")).to_contain_text("Saved")
    judgment = Judgment.objects.get(annotator=annotator)
    assert judgment.item_id == int(first_item)
    assert judgment.ranks == {response_id: rank for rank, response_id in enumerate(order, start=1)}
    assert judgment.seconds_spent is not None


def test_it_shows_the_shortcuts_on_question_mark(page_as, annotator, campaign, items):
    page = page_as(annotator)
    open_workspace(page, campaign)
    panel = page.locator("#shortcuts")
    expect(panel).to_be_hidden()
    page.keyboard.press("?")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Keyboard shortcuts")
    expect(page.locator('.annotate-head [data-toggle="shortcuts"]')).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("?")
    expect(panel).to_be_hidden()


def test_it_writes_arabic_right_to_left_and_lays_out_by_width(page_as, make_annotator, campaign, import_items):
    reader = make_annotator("arabic2", ["ar"], ["sw"])
    texts = ["السماء زرقاء بسبب تشتت الضوء.", "لأن البحر يعكس لونه.", "لا أعرف."]
    import_items(campaign, [item_line("ar-1", response_lang="ar", responses=texts)])
    page = page_as(reader, viewport={"width": 1400, "height": 900})
    open_workspace(page, campaign)

    bodies = page.locator(f"{CARDS} .text")
    expect(bodies).to_have_count(3)
    for index in range(3):
        body = bodies.nth(index)
        expect(body).to_have_attribute("dir", "auto")  # direction follows the text; the declared language stays
        expect(body).to_have_attribute("lang", "ar")
        assert body.evaluate("element => getComputedStyle(element).direction") == "rtl"

    cards = page.locator(CARDS)
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert abs(first["y"] - second["y"]) < 1, f"wide screen: cards not side by side: {first} {second}"
    assert abs(first["x"] - second["x"]) > first["width"] / 2, f"wide screen: cards overlap: {first} {second}"

    page.set_viewport_size({"width": 500, "height": 900})
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert abs(first["x"] - second["x"]) < 1, f"narrow screen: cards not stacked: {first} {second}"
    assert second["y"] >= first["y"] + first["height"], f"narrow screen: cards not stacked: {first} {second}"


def test_it_shows_untrusted_html_as_text(page_as, admin_user, annotator, import_items):
    hostile = campaign_create(name="Hostile", created_by=admin_user, overlap=2, guidelines=f"Rules: {SCRIPT} {IMG}")
    import_items(hostile, [item_line("xss-1", prompt=f"{SCRIPT} {IMG}",
                                     responses=[f"{SCRIPT} {IMG}", "plain answer", "another answer"])])
    page = page_as(annotator)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    order = open_workspace(page, hostile)
    page.click('[data-toggle="guidelines"]')
    expect(page.locator("#guidelines")).to_be_visible()
    expect(page.locator("#guidelines")).to_contain_text(SCRIPT)
    expect(page.locator(".prompt .text").first).to_contain_text(SCRIPT)
    expect(page.locator(f"{CARDS} .text", has_text=SCRIPT)).to_have_count(1)
    # No element was created from the payloads, so there is no onerror to wait for.
    assert page.locator("main img").count() == 0
    assert page.locator("script", has_text="__xss").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    comment = f"{SCRIPT}{IMG.replace('2', '3')}"
    for rank, response_id in enumerate(order, start=1):
        page.select_option(f'select[data-rank-for="{response_id}"]', str(rank))
    page.fill("#comment", comment)
    page.click("#judgment-form button[type=submit]")
    page.wait_for_selector("#workspace .done")
    judgment = Judgment.objects.get(annotator=annotator)
    assert judgment.comment == comment

    admin = page_as(admin_user)
    admin.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    admin.goto(f"/admin/annotation/judgment/{judgment.pk}/change/")
    expect(admin.locator("#content")).to_contain_text(comment)
    assert admin.locator("img[src='x']").count() == 0
    assert admin.locator("script", has_text="__xss").count() == 0
    assert admin.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


def test_it_refuses_a_ranking_with_a_missing_rank(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    item_id = page.get_attribute("#judgment-form", "data-item")
    page.select_option(f'select[data-rank-for="{order[0]}"]', "1")
    page.select_option(f'select[data-rank-for="{order[1]}"]', "2")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{item_id}/submit/")) as submitted:
        page.click("#judgment-form button[type=submit]")
    assert submitted.value.status == 422

    alert = page.locator("#judgment-form .error[role=alert]")
    expect(alert).to_contain_text("Not saved")
    expect(alert).to_contain_text("Response C: Give this response a rank.")  # the letter on screen, not the id
    # The same item stays, with what was already chosen.
    assert page.get_attribute("#judgment-form", "data-item") == item_id
    assert page.input_value(f'select[data-rank-for="{order[0]}"]') == "1"
    assert page.input_value(f'select[data-rank-for="{order[1]}"]') == "2"
    assert page.input_value(f'select[data-rank-for="{order[2]}"]') == ""
    assert not Judgment.objects.exists()
    assert not JudgmentSubmission.objects.exists()


def test_it_shows_both_annotators_judgments_to_the_admin(page_as, admin_user, annotator, other_annotator, campaign,
                                                         import_items):
    import_items(campaign, [item_line("shared")])
    for person in (annotator, other_annotator):
        page = page_as(person)
        order = open_workspace(page, campaign)
        rank_with_keyboard(page, len(order))
        page.keyboard.press("Enter")
        page.wait_for_selector("#workspace .done")
    assert Judgment.objects.filter(item__external_id="shared").count() == 2

    admin = page_as(admin_user)
    admin.goto("/admin/annotation/judgment/")
    rows = admin.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(admin.locator("#result_list")).to_contain_text(annotator.get_username())
    expect(admin.locator("#result_list")).to_contain_text(other_annotator.get_username())
    expect(admin.locator(".paginator")).to_contain_text("2 judgments")


def test_it_switches_the_interface_to_arabic_and_keeps_each_text_in_its_own_direction(page_as, annotator, campaign,
                                                                                       items):
    from django.utils import translation

    page = page_as(annotator)
    page.goto("/")
    page.select_option("#ui-language", "ar")
    with page.expect_navigation():
        page.click(".ui-language button")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    with translation.override("ar"):
        start = translation.gettext("Start annotating")
    assert start != "Start annotating"
    expect(page.locator("main")).to_contain_text(start)

    order = open_workspace(page, campaign)
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    bodies = page.locator(f"{CARDS} .text")
    for index in range(len(order)):  # the demo's responses are Swahili: left to right inside the Arabic page
        assert bodies.nth(index).evaluate("element => getComputedStyle(element).direction") == "ltr"
    # The cards run right to left, so ← goes to the next card and → back.
    page.keyboard.press("ArrowLeft")
    expect(page.locator(f"{CARDS}.selected")).to_have_attribute("data-response", order[1])
    page.keyboard.press("ArrowRight")
    expect(page.locator(f"{CARDS}.selected")).to_have_attribute("data-response", order[0])
    rank_with_keyboard(page, len(order))
    with page.expect_response(lambda response: "/submit/" in response.url) as submitted:
        page.keyboard.press("Enter")
    assert submitted.value.status == 200
    assert Judgment.objects.filter(annotator=annotator).count() == 1


def test_it_ranks_the_focused_response_after_tab(page_as, annotator, campaign, items):
    # Focus and selection are one: Tab to response B, then `1` ranks B, never the earlier selected A.
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    first, second = order[0], order[1]
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.response") == second:
            break
    else:
        raise AssertionError("Tab never reached response B")
    expect(page.locator(f'{CARDS}[data-response="{second}"]')).to_have_class("response card selected")
    page.keyboard.press("1")
    assert page.input_value(f'select[data-rank-for="{second}"]') == "1"
    assert page.input_value(f'select[data-rank-for="{first}"]') == ""


def test_it_selects_the_card_whose_control_has_focus(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    page.focus(f'{CARDS}[data-response="{order[1]}"] input[type=checkbox]')
    page.keyboard.press("w")
    expect(page.locator(f'{CARDS}.selected')).to_have_attribute("data-response", order[1])
    assert page.is_checked(f'{CARDS}[data-response="{order[1]}"] input[value="wrong_language"]')
    assert not page.is_checked(f'{CARDS}[data-response="{order[0]}"] input[value="wrong_language"]')


def test_it_shows_a_visible_focus_ring_on_the_focused_card(page_as, annotator, campaign, items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    card = page.locator(f'{CARDS}[data-response="{order[1]}"]')
    card.focus()
    width = card.evaluate("el => parseFloat(getComputedStyle(el).outlineWidth)")
    style = card.evaluate("el => getComputedStyle(el).outlineStyle")
    assert style != "none" and width >= 2, (style, width)
