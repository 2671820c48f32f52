"""Invitations end to end in the browser: an admin uploads a CSV (first with mistakes, listed by line, nothing
created), the invitation link from the e-mail (Django's locmem outbox) sets a password and signs the annotator in,
the same link a second time is refused; the annotator's own API token page and the activity ping."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from playwright.sync_api import expect

from annotation.models import ActivityPing, Invitation

pytestmark = pytest.mark.e2e

TEAM = ("username,email,native_languages,reading_languages\n"
        "amina,amina@example.org,ta,sw en\n"
        "kavya,kavya@example.org,ta;te,sw\n")
WRONG = ("username,email,native_languages,reading_languages\n"
         "amina,amina@example.org,ta,sw\n"
         "amina,other@example.org,xx,sw\n")
PASSWORD = "a-long-new-password-77"


def upload(page, name: str, text: str) -> None:
    page.set_input_files("#id_file", {"name": name, "mimeType": "text/csv", "buffer": text.encode()})
    with page.expect_navigation():
        page.click("#invite-form input[type=submit]")


def test_an_admin_invites_from_a_csv_and_the_link_works_once(new_context, login, admin_user, campaign, items):
    admin = login(new_context().new_page(), admin_user.get_username())
    admin.goto("/admin/annotation/annotatorprofile/")
    admin.click("text=Invite from a CSV")

    upload(admin, "wrong.csv", WRONG)
    errors = admin.locator("#invite-errors tbody tr")
    expect(errors.first).to_contain_text("3")
    assert {row.split("\t")[0] for row in errors.all_inner_texts()} == {"3"}
    expect(admin.locator("#invite-errors")).to_contain_text("also on line 2")
    expect(admin.locator("#invite-errors")).to_contain_text("'xx'")
    assert not get_user_model().objects.filter(username="amina").exists()

    upload(admin, "team.csv", TEAM)
    expect(admin.locator("#invitations")).to_contain_text("amina@example.org")
    shown = admin.locator(".invitation-link").first.input_value()
    assert len(mail.outbox) == 2 and mail.outbox[0].to == ["amina@example.org"]
    link = re.search(r"https?://\S+/accounts/invitation/\S+/", mail.outbox[0].body).group(0)
    assert link == shown

    annotator = new_context().new_page()
    annotator.goto(link)
    expect(annotator.locator("h1")).to_have_text("Choose your password")
    assert "/set-password/" in annotator.url  # the token left the address bar
    annotator.fill("#id_new_password1", PASSWORD)
    annotator.fill("#id_new_password2", PASSWORD)
    with annotator.expect_navigation():
        annotator.click("#invitation button[type=submit]")
    expect(annotator.locator(".topbar .who")).to_have_text("amina")
    expect(annotator.locator(".messages")).to_contain_text("Welcome, amina")
    assert Invitation.objects.get(user__username="amina").accepted_at is not None

    # The annotator can work at once: the annotation page records activity for the time report.
    annotator.goto(f"/campaigns/{campaign.id}/annotate/")
    annotator.wait_for_selector("#judgment-form .response")
    with annotator.expect_response(lambda response: response.url.endswith("/activity/")) as pinged:
        annotator.keyboard.press("j")
    assert pinged.value.status == 204
    assert ActivityPing.objects.filter(annotator__username="amina", campaign=campaign).count() == 1

    again = new_context().new_page()
    again.goto(link)
    expect(again.locator("#invitation .error")).to_contain_text("already used")
    assert again.locator("#id_new_password1").count() == 0


def test_an_annotator_renews_their_api_token(page_as, annotator):
    page = page_as(annotator)
    page.click(".topbar >> text=API token")
    expect(page.locator("h1")).to_have_text("API token")
    assert page.locator("#new-token").count() == 0
    with page.expect_navigation():
        page.click("#api-token button[type=submit]")
    key = page.input_value("#new-token")
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    answer = page.request.get("/api/v1/languages/", headers={"Authorization": f"Token {key}"})
    assert answer.status == 200
    page.goto("/accounts/api-token/")
    assert page.locator("#new-token").count() == 0  # shown once
    expect(page.locator("#api-token table")).to_contain_text(key[:8])


def test_the_guidelines_follow_the_items_response_language(page_as, make_annotator, campaign, import_items):
    from annotation.models import CampaignGuideline
    from tests.conftest import item_line

    campaign.guidelines = "Default guidelines."
    campaign.save(update_fields=["guidelines"])
    CampaignGuideline.objects.create(campaign=campaign, language_id="ta", text="Tamil guidelines.")
    import_items(campaign, [item_line("ta-0")])  # sw→ta
    page = page_as(make_annotator("both", ["ta", "ar"], ["sw"]))
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector("#judgment-form .response")
    page.keyboard.press("g")
    expect(page.locator('#guidelines [data-guidelines-for="ta"]')).to_be_visible()
    expect(page.locator('#guidelines [data-guidelines-for="ar"]')).to_be_hidden()
