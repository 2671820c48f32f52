"""Post-editing in a real browser (issue 14, point 5): an annotator native in Arabic edits a machine translation in
its right-to-left text box with the keyboard alone, saves with Ctrl+Enter, gets the next item in place (htmx) and
accepts it with Alt+A; the Translation holds the edit. A refused edit keeps what was typed and moves the focus to
the problems; Alt+U marks unusable; axe finds no serious violation on the page, in English and in Arabic."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import AnnotatorProfile, Judgment
from tests.e2e.test_axe import VIEWPORTS, serious
from tests.translation.post_edit_world import make_job, make_set
from translation.models import Translation
from translation.services.post_edit import post_edit_campaign_create

pytestmark = pytest.mark.e2e

FORM = "#post-edit-form"
ROWS = [{"id": f"sky{index}", "instruction": f"Explain why the sky is blue ({index}).", "input": "",
         "output": "Sunlight is scattered by the air, and blue light is scattered the most."} for index in range(2)]
MACHINE = {"instruction": "اشرح لماذا تكون السماء زرقاء.", "output": "ينتشر ضوء الشمس في الهواء."}


@pytest.fixture
def campaign(db):
    job = make_job(make_set(ROWS), languages=["ar"], quality=lambda row, language: 0.3,
                   text=lambda row, language, name: MACHINE[name])
    return post_edit_campaign_create(job=job, campaign_name="Arabic post-editing")


@pytest.fixture
def arabic(make_annotator):
    return make_annotator("arabic-browser", ["ar"], ["en"])


def open_post_edit(page, campaign) -> str:
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector(f"{FORM} textarea")
    return page.get_attribute(FORM, "data-item")


def wait_for_next(page, old: str) -> None:
    page.wait_for_function(
        "old => { const form = document.getElementById('post-edit-form'); return form && form.dataset.item !== old; }",
        arg=old)


def field_box(page, field: str) -> str:
    """The textarea of a field (the section's heading names it)."""
    return page.locator(f"{FORM} section.post-edit-field", has_text=field).locator("textarea").get_attribute("id")


def test_an_arabic_annotator_edits_with_the_keyboard_and_saves_with_ctrl_enter(page_as, arabic, campaign):
    page = page_as(arabic)
    first = open_post_edit(page, campaign)
    page.evaluate("window.__samePage = 'kept'")
    instruction, output = field_box(page, "Instruction"), field_box(page, "Output")
    # Focus lands on the first text box; it is laid out right to left, the source beside it left to right.
    assert page.evaluate("document.activeElement.id") == instruction
    assert page.evaluate(f"getComputedStyle(document.getElementById('{output}')).direction") == "rtl"
    assert page.get_attribute(f"#{output}", "lang") == "ar"
    assert page.evaluate("getComputedStyle(document.querySelector('.source-text')).direction") == "ltr"
    expect(page.locator(f"#{output}")).to_have_value(MACHINE["output"])

    page.keyboard.press("Tab")  # to the output's box
    assert page.evaluate("document.activeElement.id") == output
    page.keyboard.press("Control+End")
    page.keyboard.type(" والضوء الأزرق ينتشر أكثر.")
    page.keyboard.press("Enter")  # a new line inside the box, not a submit
    page.keyboard.type("لذلك تبدو السماء زرقاء.")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{first}/submit/")) as submitted:
        page.keyboard.press("Control+Enter")
    assert submitted.value.status == 200
    wait_for_next(page, first)
    assert page.evaluate("window.__samePage") == "kept"  # swapped in place, no page load
    expect(page.locator("#workspace .notice")).to_contain_text("Saved")
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"  # the next item's first box

    edited = MACHINE["output"] + " والضوء الأزرق ينتشر أكثر.\nلذلك تبدو السماء زرقاء."
    translation = Translation.objects.get(post_edit_item_id=int(first))
    assert translation.post_edit == "edited" and translation.fields["output"] == edited
    assert translation.fields["instruction"] == MACHINE["instruction"]
    assert translation.machine_fields["output"] == MACHINE["output"] and translation.edit_distance > 0
    assert translation.post_edited_by == arabic
    judgment = Judgment.objects.get(annotator=arabic, item_id=int(first))
    assert judgment.verdict == "edited" and judgment.seconds_spent is not None

    second = page.get_attribute(FORM, "data-item")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{second}/submit/")):
        page.keyboard.press("Alt+KeyA")
    expect(page.locator("#workspace")).not_to_contain_text("Accept as is")  # nothing left for this annotator
    assert Translation.objects.get(post_edit_item_id=int(second)).post_edit == "accepted"


def test_a_refused_edit_keeps_the_text_and_alt_u_marks_unusable(page_as, arabic, campaign):
    page = page_as(arabic)
    item = open_post_edit(page, campaign)
    instruction, output = field_box(page, "Instruction"), field_box(page, "Output")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")  # the instruction emptied: refused
    page.focus(f"#{output}")
    page.keyboard.press("Control+End")
    page.keyboard.type(" تعديل")
    with page.expect_response(lambda response: "/submit/" in response.url) as refused:
        page.keyboard.press("Control+Enter")
    assert refused.value.status == 422
    page.wait_for_selector("#form-errors")
    assert page.evaluate("document.activeElement.id") == "form-errors"
    expect(page.locator("#form-errors")).to_contain_text("Instruction")
    expect(page.locator(f"#{output}")).to_have_value(MACHINE["output"] + " تعديل")
    expect(page.locator(f"#{instruction}")).to_have_attribute("aria-invalid", "true")
    assert page.get_attribute(FORM, "data-item") == item
    assert Translation.objects.get(post_edit_item_id=int(item)).post_edit == "pending"

    with page.expect_response(lambda response: "/submit/" in response.url) as marked:
        page.keyboard.press("Alt+KeyU")
    assert marked.value.status == 200
    wait_for_next(page, item)
    assert Translation.objects.get(post_edit_item_id=int(item)).post_edit == "unusable"


def test_the_shortcuts_list_names_the_post_editing_keys(page_as, arabic, campaign):
    page = page_as(arabic)
    open_post_edit(page, campaign)
    page.locator('.annotate-head [data-toggle="shortcuts"]').click()
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Ctrl+Enter")
    expect(dialog).to_contain_text("accept the machine translation as it is")
    expect(dialog).to_contain_text("mark the translation unusable")


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_the_post_edit_page_has_no_serious_axe_violations(new_context, login, arabic, campaign, language, viewport):
    AnnotatorProfile.objects.filter(user=arabic).update(ui_language=language)
    page = login(new_context(viewport=VIEWPORTS[viewport]).new_page(), arabic.get_username())
    open_post_edit(page, campaign)
    problems = {"post-edit": serious(page)}
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    with page.expect_response(lambda response: "/submit/" in response.url):
        page.keyboard.press("Control+Enter")
    page.wait_for_selector("#form-errors")
    problems["refused"] = serious(page)
    assert not {name: found for name, found in problems.items() if found}
