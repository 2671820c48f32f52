"""Vendored web fonts in a real browser: a page fetches the font files of the scripts on it and no others, Urdu is
set in Nastaliq, and every file fonts.css names is served, by staticfiles and by whitenoise after collectstatic."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from tests.conftest import item_line

pytestmark = pytest.mark.e2e

CARDS = "#judgment-form .response"
FONTS_CSS = "/static/css/fonts.css"
FACE = re.compile(r'@font-face \{[^}]*?src: url\("([^"]+)"\)[^}]*?unicode-range: ([^;]+);', re.S)
HINDI = ["नमस्ते, आप कैसे हैं?", "मैं ठीक हूँ, धन्यवाद।", "यह एक अच्छा दिन है।"]
# (font folder, language, the script's own letters) of scripts a Hindi item's page does not show
ABSENT_SCRIPTS = [
    ("noto-sans-tamil", "ta", range(0x0B80, 0x0C00)), ("noto-sans-bengali", "bn", range(0x0980, 0x0A00)),
    ("noto-sans-thai", "th", range(0x0E00, 0x0E80)), ("noto-sans-ethiopic", "am", range(0x1200, 0x13A0)),
    ("noto-sans-khmer", "km", range(0x1780, 0x1800)), ("noto-nastaliq-urdu", "ur", range(0)),
    ("noto-sans-jp", "ja", range(0x3040, 0x3100)), ("noto-sans-kr", "ko", range(0xAC00, 0xD7B0)),
]
URDU = ["آپ کیسے ہیں؟ میں ٹھیک ہوں۔", "یہ ایک اچھا دن ہے۔", "پاکستان کی قومی زبان اردو ہے۔"]


def font_faces(css: str, base: str) -> dict[str, list[range]]:
    """Absolute URL of each font file named in a fonts.css served from base -> the code point ranges of its face."""
    faces = {}
    for url, ranges in FACE.findall(css):
        spans = []
        for part in ranges.split(","):
            low, _, high = part.strip().removeprefix("U+").partition("-")
            spans.append(range(int(low, 16), int(high or low, 16) + 1))
        faces[urljoin(base + "/static/css/", url)] = spans
    return faces


def record_font_requests(page) -> list[str]:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url) if request.url.endswith(".woff2") else None)
    return requested


def open_workspace_with_fonts(page, campaign, family: str, sample: str) -> None:
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector(CARDS)
    # The files load when layout first needs a glyph of their range; wait for that rather than for a fixed time.
    # fonts.check() alone is true for a family no @font-face declares, hence the loaded face.
    page.wait_for_function(
        """([family, sample]) => document.fonts.check(`16px "${family}"`, sample)
            && [...document.fonts].some(face => face.family === family && face.status === "loaded")""",
        arg=[family, sample])
    page.evaluate("document.fonts.ready.then(() => true)")


def test_a_devanagari_page_fetches_the_devanagari_font_and_no_other_script(page_as, make_annotator, campaign,
                                                                           import_items, live_server):
    reader = make_annotator("hindi1", ["hi"], ["sw"])
    import_items(campaign, [item_line("hi-1", response_lang="hi", responses=HINDI)])
    page = page_as(reader)
    requested = record_font_requests(page)

    open_workspace_with_fonts(page, campaign, "Noto Sans Devanagari", "नमस्ते")

    assert page.evaluate("document.fonts.check('16px \"Noto Sans Devanagari\"', 'नमस्ते')")
    assert page.eval_on_selector(".response .text[lang=hi]", "el => getComputedStyle(el).fontFamily").startswith(
        '"Noto Sans Devanagari"')
    assert any("/vendor/fonts/noto-sans-devanagari/" in url for url in requested), requested
    # Loaded only for the scripts on the page: each file fetched covers a character the page shows. (The interface
    # language menu names its languages in their own scripts, so العربية and 简体中文 may fetch a slice or two.)
    faces = font_faces(page.request.get(FONTS_CSS).text(), live_server.url)
    shown = {ord(char) for char in page.evaluate("document.documentElement.textContent")}
    for url in requested:
        assert url in faces, f"{url} is not named in fonts.css"
        assert any(point in span for span in faces[url] for point in shown), f"{url} covers nothing on the page"
    # And no file of a script that is not on the page. Checked per script while neither its letters nor an element
    # of its language are on the page, so that a new interface language in the menu does not break the test.
    checked = 0
    for folder, language, letters in ABSENT_SCRIPTS:
        in_language = page.evaluate("lang => document.querySelector(`:lang(${lang})`) !== null", language)
        if in_language or shown & set(letters):
            continue
        checked += 1
        assert not any(f"/vendor/fonts/{folder}/" in url for url in requested), (folder, requested)
    assert checked >= 5, "the page shows too many scripts for this test to mean anything"
    assert sum("/vendor/fonts/noto-sans-sc/" in url for url in requested) <= len("简体中文")


def test_urdu_is_set_in_nastaliq(page_as, make_annotator, campaign, import_items):
    reader = make_annotator("urdu1", ["ur"], ["sw"])
    import_items(campaign, [item_line("ur-1", response_lang="ur", responses=URDU)])
    page = page_as(reader)
    requested = record_font_requests(page)

    open_workspace_with_fonts(page, campaign, "Noto Nastaliq Urdu", URDU[0])

    urdu_text = page.locator(".response .text[lang=ur]").first
    expect(urdu_text).to_have_attribute("dir", "auto")
    family = urdu_text.evaluate("el => getComputedStyle(el).fontFamily")
    assert family.startswith('"Noto Nastaliq Urdu"'), family
    assert any("/vendor/fonts/noto-nastaliq-urdu/" in url for url in requested), requested
    # The Latin prompt beside it keeps the interface's system font.
    prompt_family = page.eval_on_selector(".prompt .text[lang=sw]", "el => getComputedStyle(el).fontFamily")
    assert prompt_family.startswith("system-ui"), prompt_family


def test_every_font_file_is_served(page_as, annotator, live_server):
    page = page_as(annotator)
    faces = font_faces(page.request.get(FONTS_CSS).text(), live_server.url)
    assert len(faces) > 300
    for url in faces:
        response = page.request.get(url)
        assert response.status == 200, f"{url}: {response.status}"
        assert response.body()[:4] == b"wOF2", f"{url} is not a woff2 file"


def test_whitenoise_serves_the_collected_fonts_under_their_hashed_names(settings, tmp_path, admin_user):
    # Production's storage: collectstatic must resolve every url() in fonts.css (the manifest storage refuses a
    # missing one), and whitenoise must then serve the hashed files the rewritten stylesheet names.
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()
    client.force_login(admin_user)
    page = client.get("/", follow=True).content.decode()
    css_url = re.search(r'href="(/static/css/fonts\.[0-9a-f]+\.css)"', page)[1]
    css = client.get(css_url)
    assert css.status_code == 200
    fonts = font_faces(b"".join(css.streaming_content).decode(), "")
    assert len(fonts) > 300
    for url in fonts:
        assert re.search(r"\.[0-9a-f]{12}\.woff2$", url), url
        response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert b"".join(response.streaming_content)[:4] == b"wOF2"
