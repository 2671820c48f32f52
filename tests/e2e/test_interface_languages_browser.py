"""The interface languages added as drafts (docs/translations.md) in a real browser on a 390 px phone: the page is in
the chosen language, the annotation page works in it, and its longer words and the longer language menu do not make
the page scroll sideways."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import translation

from tests.e2e.test_annotate_browser import open_workspace

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("code", ["bn", "ja", "pt-br", "ru"])
def test_an_annotator_works_in_a_draft_language_on_a_phone(page_as, annotator, campaign, items, code):
    annotator.annotator.ui_language = code  # restored at login
    annotator.annotator.save()
    page = page_as(annotator, viewport=PHONE)
    with translation.override(code):
        start, skip, submit = (translation.gettext(text) for text in ("Start annotating", "Skip", "Submit"))
    assert start != "Start annotating"
    page.goto("/")
    assert page.get_attribute("html", "lang") == code and page.get_attribute("html", "dir") == "ltr"
    assert page.get_by_role("link", name=start).count() == 1
    names = page.eval_on_selector_all("select[name=language] option", "options => options.map(o => o.textContent)")
    # Each language by its own name. (English itself is shown translated: {% get_available_languages %} runs the
    # names through gettext, and Django's catalogs translate "English".)
    assert [name.strip() for name in names][1:] == [name for _code, name in settings.LANGUAGES][1:]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{code}: home scrolls sideways"

    assert len(open_workspace(page, campaign)) >= 2
    assert page.get_by_role("button", name=submit).count() == 1
    assert page.get_by_role("button", name=skip, exact=True).count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{code}: the annotation page is {width} px wide on a {PHONE['width']} px screen"
