"""axe-core (bundled in axe-playwright-python) over every annotator page, in English and Arabic, on a wide screen
and a 390 px phone: no serious or critical violation (WCAG 2.2 AA rules and best practices that axe tags so)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from annotation.models import AnnotatorProfile
from tests.e2e.test_annotate_browser import CARDS, open_workspace, rank_with_keyboard

pytestmark = pytest.mark.e2e

AXE_OPTIONS = {"resultTypes": ["violations"],
               "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                     "best-practice"]}}
VIEWPORTS = {"wide": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def serious(page) -> list[str]:
    results = Axe().run(page, options=AXE_OPTIONS)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_annotator_pages_have_no_serious_axe_violations(new_context, login, annotator, campaign, items, language,
                                                        viewport):
    AnnotatorProfile.objects.filter(user=annotator).update(ui_language=language)
    page = new_context(viewport=VIEWPORTS[viewport]).new_page()
    page.goto("/accounts/login/")
    problems = {"login": serious(page)}
    login(page, annotator.get_username())
    problems["home"] = serious(page)

    order = open_workspace(page, campaign)
    problems["annotate"] = serious(page)
    page.keyboard.press("?")
    problems["shortcuts"] = serious(page)
    page.keyboard.press("Escape")
    rank_with_keyboard(page, len(order) - 1)  # one rank missing: the refused ranking and its errors
    with page.expect_response(lambda response: "/submit/" in response.url):
        page.keyboard.press("Enter")
    page.wait_for_selector("#form-errors")
    problems["refused"] = serious(page)
    page.keyboard.press(str(len(order)))
    page.focus(f"{CARDS} >> nth=-1")
    page.keyboard.press(str(len(order)))
    judged = page.get_attribute("#judgment-form", "data-item")
    with page.expect_response(lambda response: "/submit/" in response.url):
        page.keyboard.press("Enter")
    # The next item replaces the form in place: wait for it, not for cards that may still be the old ones.
    page.wait_for_function(
        "old => { const form = document.getElementById('judgment-form'); return form && form.dataset.item !== old; }",
        arg=judged)
    page.select_option("#skip-reason", "other")  # "Other" without a reason: refused, with its error
    with page.expect_response(lambda response: "/skip/" in response.url):
        page.click(".skip button[type=submit]")
    page.wait_for_selector("#skip-error")
    problems["skip refused"] = serious(page)
    page.fill("#skip-reason-other", "cut off")
    with page.expect_response(lambda response: "/skip/" in response.url):
        page.click(".skip button[type=submit]")

    page.goto(f"/campaigns/{campaign.id}/mine/")  # with a judgment and a skip (its undo button)
    problems["mine"] = serious(page)
    page.click("text=Revise" if language == "en" else "td a")
    page.wait_for_selector(CARDS)
    problems["revise"] = serious(page)
    assert not {name: found for name, found in problems.items() if found}


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_people_pages_have_no_serious_axe_violations(new_context, login, live_server, annotator, admin_user, language,
                                                     viewport):
    """The invitation page (its form, its errors, its refusal), the password reset pages and the API token page."""
    from annotation.services.invitations import annotators_invite, annotators_parse_csv

    rows = annotators_parse_csv(content=b"username,email,native_languages\ninvitee,invitee@example.org,ta\n")
    link = annotators_invite(rows=rows, created_by=admin_user, base_url=live_server.url)[0].link
    AnnotatorProfile.objects.filter(user=annotator).update(ui_language=language)
    page = new_context(viewport=VIEWPORTS[viewport], locale=language).new_page()
    problems = {}
    page.goto(link)
    page.wait_for_selector("#id_new_password1")
    problems["invitation"] = serious(page)
    page.fill("#id_new_password1", "a-long-new-password-77")
    page.fill("#id_new_password2", "something else entirely")
    with page.expect_navigation():
        page.click("#invitation button[type=submit]")
    page.wait_for_selector("#password2-errors")
    problems["invitation refused password"] = serious(page)
    page.goto("/accounts/invitation/MQ/1-0123456789abcdef/")
    problems["invitation refused link"] = serious(page)
    page.goto("/accounts/password-reset/")
    problems["password reset"] = serious(page)
    page.fill("#id_email", "nobody@example.org")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    problems["password reset sent"] = serious(page)
    page.goto("/accounts/reset/MQ/set-password/")
    problems["password reset link refused"] = serious(page)
    page.goto("/accounts/reset/done/")
    problems["password reset done"] = serious(page)

    login(page, annotator.get_username())
    page.goto("/accounts/api-token/")
    problems["api token"] = serious(page)
    with page.expect_navigation():
        page.click("#api-token button[type=submit]")
    problems["api token renewed"] = serious(page)
    assert not {name: found for name, found in problems.items() if found}


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("viewport", ["wide", "phone"])
def test_reviewer_pages_have_no_serious_axe_violations(new_context, login, make_annotator, annotator,
                                                       other_annotator, campaign, items, language, viewport):
    """The disagreement list and the adjudication page (issue 15), as a reviewer who is a native speaker, not staff,
    with a warned annotator's notice on the annotation page too."""
    from django.contrib.auth.models import Group

    from annotation.models import AnnotatorStanding
    from annotation.services.judgments import judgment_submit
    from annotation.services.quality import REVIEWER_GROUP
    from tests.conftest import new_key, ranks_for

    for user, order in ((annotator, [1, 2, 3]), (other_annotator, [3, 2, 1])):
        judgment_submit(annotator=user, item_id=items[0].id, ranks=ranks_for(items[0], order),
                        flags={str(items[0].responses.first().id): ["wrong_language"]}, comment="B is off-topic",
                        idempotency_key=new_key())
    reviewer = make_annotator("reviewer", ["ta"], ["sw"])
    reviewer.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    AnnotatorProfile.objects.filter(user=reviewer).update(ui_language=language)
    AnnotatorStanding.objects.create(campaign=campaign, annotator=reviewer, prompt_language_id="sw",
                                     response_language_id="ta", state="warned", gold_seen=10, gold_correct=6)
    page = new_context(viewport=VIEWPORTS[viewport]).new_page()
    login(page, reviewer.get_username())
    problems = {}
    page.goto(f"/review/campaigns/{campaign.id}/disagreements/")
    page.wait_for_selector("#disagreements")
    problems["disagreements"] = serious(page)
    page.goto(f"/review/items/{items[0].id}/adjudicate/")
    problems["adjudicate"] = serious(page)
    page.click("#adjudication-form button[type=submit]")  # nothing ranked: refused, with its errors
    page.wait_for_selector("#form-errors")
    problems["adjudicate refused"] = serious(page)
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector("[data-standing=warned]")
    problems["annotate, warned"] = serious(page)
    assert not {name: found for name, found in problems.items() if found}
