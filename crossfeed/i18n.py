"""The interface language: each person reads Crossfeed's pages in the language they chose, on any browser.

Django's LocaleMiddleware picks a language from the `django_language` cookie or the browser's Accept-Language.
On top of it, a signed-in person's own choice wins: it is kept in their annotator profile (`ui_language`), copied
into the session when they log in, and applied by `UserLanguageMiddleware` on every page. The header's language
menu posts to `ui_language_set`, which stores the choice in all three places (profile, session, cookie: the
cookie keeps the login page in that language after logging out). API token requests carry no session: their
messages follow the request's Accept-Language header, and without one the profile's choice (`token_language`).

Catalogs live in locale/<code>/LC_MESSAGES (docs/translations.md: which languages, how to add one).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

SESSION_KEY = "ui_language"


def supported(code: str) -> bool:
    return code in {language for language, _name in settings.LANGUAGES}


class UserLanguageMiddleware:
    """After authentication: the signed-in person's chosen language, over the cookie and the browser's."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The session first: it is empty for API token requests, so they never load a user here. Only a signed-in
        # person's session holds the key (logging out flushes the session); the user check is a second guard.
        code = request.session.get(SESSION_KEY, "")
        if code and supported(code) and request.user.is_authenticated:
            translation.activate(code)
            request.LANGUAGE_CODE = code
        return self.get_response(request)


def token_language(request: HttpRequest, user) -> None:
    """An API request authenticated by a token: the person's chosen language when the request names none.

    A client that sends Accept-Language (or the language cookie) asked for that language, and gets it, as
    LocaleMiddleware already chose; a script that sends neither gets the language its owner chose in the interface
    instead of English. Called once the token is known (crossfeed/auth.py), before the view runs.
    """
    if request.META.get("HTTP_ACCEPT_LANGUAGE") or request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME):
        return
    profile = getattr(user, "annotator", None)
    if profile is not None and profile.ui_language and supported(profile.ui_language):
        translation.activate(profile.ui_language)
        request.LANGUAGE_CODE = profile.ui_language


@receiver(user_logged_in)
def _language_at_login(sender, request: HttpRequest | None, user, **kwargs) -> None:
    profile = getattr(user, "annotator", None)
    if request is not None and profile is not None and supported(profile.ui_language):
        request.session[SESSION_KEY] = profile.ui_language


@login_required
@require_POST
def ui_language_set(request: HttpRequest) -> HttpResponse:
    """Stores the person's interface language ("" = follow the browser) and goes back to the page they were on."""
    code = request.POST.get("language", "")
    if code and not supported(code):
        choices = ", ".join(language for language, _name in settings.LANGUAGES)
        return HttpResponseBadRequest(f"Unknown interface language {code[:20]!r}; choose one of: {choices}.",
                                      content_type="text/plain; charset=utf-8")
    profile = getattr(request.user, "annotator", None)
    if profile is not None and profile.ui_language != code:
        profile.ui_language = code
        profile.save(update_fields=["ui_language"])
    if code:
        request.session[SESSION_KEY] = code
    else:
        request.session.pop(SESSION_KEY, None)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("home")
    response = HttpResponseRedirect(target)
    if code:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=365 * 24 * 3600, samesite="Lax",
                            secure=request.is_secure(), httponly=True)
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, samesite="Lax")
    return response
