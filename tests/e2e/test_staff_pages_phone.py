"""Staff pages on a 390 px phone: wide tables scroll inside their own box, the page never scrolls sideways; the admin
loads the vendored fonts, so response texts in any script show in the admin too."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("path", ["/training/", "/evaluation/", "/evaluation/coverage/", "/translation/",
                                  "/translation/new/"])
def test_staff_pages_never_scroll_sideways_on_a_phone(page_as, admin_user, path):
    page = page_as(admin_user, viewport=PHONE)
    response = page.goto(path)
    assert response.status == 200, path
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{path}: page is {width} px wide on a {PHONE['width']} px screen"


def test_the_admin_loads_the_web_fonts(page_as, admin_user):
    page = page_as(admin_user)
    page.goto("/admin/")
    assert page.locator('link[href$="css/fonts.css"]').count() == 1
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Noto Sans Devanagari" in family, family
