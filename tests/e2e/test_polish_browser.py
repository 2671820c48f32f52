"""Issue 15's annotation UI defects, as a person sees them in the browser: errors by letter that go away when fixed,
skip "Other" with its reason, skips listed and undone, the revise page's progress and confirmation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_annotate_browser import CARDS, open_workspace

pytestmark = pytest.mark.e2e


def test_it_names_errors_by_letter_and_clears_each_when_its_response_gets_a_rank(page_as, annotator, campaign,
                                                                                  items):
    page = page_as(annotator)
    order = open_workspace(page, campaign)
    page.select_option(f'select[data-rank-for="{order[0]}"]', "1")
    item_id = page.get_attribute("#judgment-form", "data-item")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{item_id}/submit/")) as submitted:
        page.click("#judgment-form button[type=submit]")
    assert submitted.value.status == 422

    summary = page.locator("#form-errors")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Response B: Give this response a rank.")
    expect(summary).to_contain_text("Response C: Give this response a rank.")
    for response_id in order:
        expect(summary).not_to_contain_text(f"{response_id}:")
    cards = page.locator(CARDS)
    expect(cards.nth(1).locator(".field-error")).to_have_text("Give this response a rank.")
    second = page.locator(f'select[data-rank-for="{order[1]}"]')
    expect(second).to_have_attribute("aria-invalid", "true")

    page.select_option(f'select[data-rank-for="{order[1]}"]', "2")
    expect(cards.nth(1).locator(".field-error")).to_have_count(0)
    expect(second).not_to_have_attribute("aria-invalid", "true")
    expect(summary).not_to_contain_text("Response B")
    expect(summary).to_contain_text("Response C")
    expect(summary).to_be_visible()

    # The last one by keyboard: focus C's card and press 3.
    cards.nth(2).focus()
    page.keyboard.press("3")
    expect(cards.nth(2).locator(".field-error")).to_have_count(0)
    expect(summary).to_be_hidden()


def test_it_asks_for_the_reason_of_other_and_lists_the_skip_for_undo(page_as, annotator, campaign, items):
    from annotation.models import Skip

    page = page_as(annotator)
    open_workspace(page, campaign)
    item_id = page.get_attribute("#judgment-form", "data-item")
    other = page.locator("#skip-reason-other")
    expect(other).to_be_hidden()  # only for "Other"
    page.select_option("#skip-reason", "other")
    expect(other).to_be_visible()
    with page.expect_response(lambda response: response.url.endswith(f"/items/{item_id}/skip/")) as skipped:
        page.click(".skip button[type=submit]")
    assert skipped.value.status == 422
    expect(page.locator("#skip-error")).to_contain_text("write your reason in the box")
    expect(other).to_be_focused()
    assert not Skip.objects.exists()

    other.fill("the instruction is cut off")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{item_id}/skip/")) as skipped:
        page.click(".skip button[type=submit]")
    assert skipped.value.status == 200
    expect(page.locator("#workspace .notice")).to_contain_text("Skipped")
    assert Skip.objects.get().reason == "other: the instruction is cut off"

    page.goto(f"/campaigns/{campaign.id}/mine/")
    section = page.locator("table[aria-labelledby=skipped]")
    expect(section).to_contain_text("Other: the instruction is cut off")
    with page.expect_navigation():
        section.get_by_role("button", name="Undo").click()
    expect(page.locator(".messages")).to_contain_text("can be offered to you again")
    assert not Skip.objects.exists()


def test_the_revise_page_shows_progress_numbers_and_confirms_the_revision(page_as, annotator, campaign, items):
    from annotation.services.judgments import judgment_submit
    from tests.conftest import new_key, ranks_for

    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    page = page_as(annotator)
    page.goto(f"/items/{items[0].id}/revise/")
    expect(page.locator("#progress-row")).to_contain_text("1 done · 4 left")
    expect(page.locator("#progress-row")).to_contain_text("10.0%")
    page.locator(f"{CARDS} select").first.select_option("3")
    with page.expect_navigation():
        page.click("#judgment-form button[type=submit]")
    assert page.url.endswith(f"/campaigns/{campaign.id}/mine/")
    expect(page.locator(".messages")).to_contain_text("Revision saved.")


def test_the_export_admin_page_updates_itself_until_the_export_has_finished(page_as, admin_user, campaign):
    from django.utils import timezone

    from annotation.models import Export, JobStatus

    export = Export.objects.create(campaign=campaign, min_judgments=1, created_by=admin_user)
    assert export.status == JobStatus.QUEUED
    page = page_as(admin_user)
    page.goto(f"/admin/annotation/export/{export.id}/change/")
    expect(page.locator("#export-polling")).to_be_visible()
    page.evaluate("window.__samePage = 'kept'")
    Export.objects.filter(pk=export.id).update(status=JobStatus.SUCCEEDED, rows=3, finished_at=timezone.now())

    expect(page.locator("#export-polling")).to_have_count(0)  # within the default 10 s; the page polls every 3 s
    expect(page.locator("#export-live .field-status")).to_contain_text("succeeded")
    expect(page.locator("#export-announce")).to_have_text("Export status: succeeded")
    assert page.evaluate("window.__samePage") == "kept"  # swapped in place, not reloaded
