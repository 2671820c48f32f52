"""The interface language (crossfeed/i18n.py): a person's choice, kept in their profile, applied on every page;
and the catalogs in locale/ (compiled, current, and covering the annotator's pages)."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from annotation.models import AnnotatorProfile
from annotation.services.people import annotator_create

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
TRANSLATED = [code for code, _name in settings.LANGUAGES if code != "en"]


def _in(code: str, text: str) -> str:
    with translation.override(code):
        return translation.gettext(text)


@pytest.fixture
def annotator(db):
    profile, _token = annotator_create(username="amina", password="a-long-enough-password-1",
                                       native_languages=["sw"], reading_languages=["en"])
    return profile.user


def test_a_chosen_language_is_stored_and_applied_with_the_scripts_direction(client, annotator):
    client.force_login(annotator)
    response = client.post(reverse("ui_language_set"), {"language": "ar", "next": reverse("home")})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ar"
    assert AnnotatorProfile.objects.get(user=annotator).ui_language == "ar"
    page = client.get(reverse("home")).content.decode()
    assert '<html lang="ar" dir="rtl">' in page
    assert _in("ar", "Interface language") != "Interface language" and _in("ar", "Interface language") in page


def test_the_profile_language_follows_the_person_to_a_new_browser(client, annotator):
    annotator.annotator.ui_language = "sw"
    annotator.annotator.save()
    # Through the login form: the sign-in lockout (django-axes) needs the request that test clients' login() omits.
    response = client.post(reverse("login"), {"username": "amina", "password": "a-long-enough-password-1"})
    assert response.status_code == 302, response.content[:500]
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="sw" dir="ltr">' in page and _in("sw", "Interface language") in page


def test_without_a_choice_the_browser_decides_and_an_empty_choice_resets(client, annotator):
    client.force_login(annotator)
    assert '<html lang="es"' in client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    client.post(reverse("ui_language_set"), {"language": "zh-hans"})
    assert '<html lang="zh-hans"' in client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    response = client.post(reverse("ui_language_set"), {"language": ""})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == ""  # deleted
    assert AnnotatorProfile.objects.get(user=annotator).ui_language == ""
    assert '<html lang="es"' in client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="es").content.decode()


def test_an_unknown_language_is_refused_with_the_choices_and_changes_nothing(client, annotator):
    client.force_login(annotator)
    response = client.post(reverse("ui_language_set"), {"language": "xx-evil<script>"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert "Unknown interface language" in response.content.decode() and "zh-hans" in response.content.decode()
    assert AnnotatorProfile.objects.get(user=annotator).ui_language == ""


def test_it_never_redirects_off_site(client, annotator):
    client.force_login(annotator)
    response = client.post(reverse("ui_language_set"), {"language": "fr", "next": "https://evil.example/x"})
    assert response["Location"] == reverse("home")


def test_a_person_without_an_annotator_profile_can_choose_too(admin_client):
    response = admin_client.post(reverse("ui_language_set"), {"language": "hi"})
    assert response.status_code == 302
    assert '<html lang="hi"' in admin_client.get(reverse("home")).content.decode()


def test_the_menu_lists_every_interface_language_by_its_own_name(client, annotator):
    client.force_login(annotator)
    page = client.get(reverse("home")).content.decode()
    for code, name in settings.LANGUAGES:
        assert f'<option value="{code}" lang="{code}"' in page and name in page


# --- the catalogs -------------------------------------------------------------------------------------------------

# Texts of our own (Django's catalogs translate words like "Log out" already).
ANNOTATOR_STRINGS = ["Interface language", "Start annotating", "My judgments", "Your progress"]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_interface_language_has_a_compiled_catalog_for_the_annotators_pages(code):
    folder = LOCALE / translation.to_locale(code) / "LC_MESSAGES"
    assert (folder / "django.po").is_file() and (folder / "django.mo").is_file(), folder
    for text in ANNOTATOR_STRINGS:
        assert _in(code, text) != text, f"{code}: {text!r} is not translated"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt is not installed")
@pytest.mark.parametrize("code", TRANSLATED)
def test_the_compiled_catalogs_are_those_of_the_po_files(code, tmp_path):
    # A .po edited without `make messages` would otherwise ship its old translations.
    folder = LOCALE / translation.to_locale(code) / "LC_MESSAGES"
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(folder / "django.po")], check=True)
    with fresh.open("rb") as new, (folder / "django.mo").open("rb") as shipped:
        assert gettext.GNUTranslations(new)._catalog == gettext.GNUTranslations(shipped)._catalog, \
            f"locale/{folder.parent.name}: run `make messages` and commit the .mo"


# --- the draft catalogs (issue 15: at least ten interface languages, marked as drafts until reviewed) ----------------

# Texts of the annotator's pages added with the paid-campaign work (skip list, API token, password reset, invitation).
NEWER_ANNOTATOR_STRINGS = ["Skip to content", "Undo skip", "Your tokens", "Forgot your password?",
                           "Choose your password", "Rank of response %(letter)s"]
# gettext's plural forms per language (CLDR's integer categories; Spanish as Django's own catalog has it).
NPLURALS = {"ar": 6, "bn": 2, "es": 3, "fr": 2, "hi": 2, "ja": 1, "pt-br": 2, "ru": 3, "sw": 2, "zh-hans": 1}


def test_there_are_at_least_ten_interface_languages():
    assert len(settings.LANGUAGES) >= 10, settings.LANGUAGES


@pytest.mark.parametrize("code", TRANSLATED)
def test_each_catalog_says_it_is_a_draft_and_has_its_languages_plural_forms(code):
    header = (LOCALE / translation.to_locale(code) / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")[:2000]
    assert "machine-assisted draft; needs native" in header, f"{code}: the header must say the catalog is a draft"
    assert f"nplurals={NPLURALS[code]};" in header, f"{code}: Plural-Forms"
    for text in NEWER_ANNOTATOR_STRINGS:
        assert _in(code, text) != text, f"{code}: {text!r} is not translated"


def test_russian_and_arabic_counts_take_their_own_plural_forms():
    def judged(code: str, n: int) -> str:
        with translation.override(code):
            return translation.ngettext("You judged %(done)s item.", "You judged %(done)s items.", n) % {"done": n}
    assert [judged("ru", n) for n in (1, 3, 5, 21)] == [
        "Вы оценили 1 элемент.", "Вы оценили 3 элемента.", "Вы оценили 5 элементов.", "Вы оценили 21 элемент."]
    with translation.override("ar"):
        shown = {translation.ngettext("%(shown)s of %(total)s item shown.", "%(shown)s of %(total)s items shown.", n)
                 for n in (0, 1, 2, 3, 11, 100)}
    assert len(shown) >= 4, shown  # Arabic: one, two, a few (3-10) and many (11-99) take different words


def test_the_language_menu_names_each_language_in_itself(client, annotator):
    client.force_login(annotator)
    client.post(reverse("ui_language_set"), {"language": "ru", "next": "/"})
    html = client.get("/").content.decode()
    assert '<html lang="ru"' in html
    assert '<option value="en" lang="en">English</option>' in html
    assert '<option value="ru" lang="ru" selected>Русский</option>' in html
    assert "Английский" not in html
