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
    with page.expect_response(lambda response: "/submit/" in response.url):
        page.keyboard.press("Enter")

    page.goto(f"/campaigns/{campaign.id}/mine/")
    problems["mine"] = serious(page)
    page.click("text=Revise" if language == "en" else "td a")
    page.wait_for_selector(CARDS)
    problems["revise"] = serious(page)
    assert not {name: found for name, found in problems.items() if found}
