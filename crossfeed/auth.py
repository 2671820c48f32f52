"""Authentication: API tokens looked up by their hash with a short per-process cache, and the sign-in lockout's
page and client address (django-axes, settings.py).

Every annotation call authenticates; looking the token and its user up costs a query each time. Caching the answer
for TOKEN_CACHE_SECONDS (default 30, 0 turns it off) saves that query on the hot path; the price is that a deleted
token or a deactivated user keeps working for at most that long in each process.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


class CachedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` against the hashed store (crossfeed/tokens); DRF's header parsing and 401s."""

    def authenticate(self, request):
        from crossfeed.i18n import token_language

        found = super().authenticate(request)
        if found is not None:
            # The messages of this request in the person's interface language when the client names none.
            token_language(request._request, found[0])
        return found

    def authenticate_credentials(self, key):
        from crossfeed.tokens.services import token_digest

        seconds = settings.TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return self._look_up(key)
        # The key itself never goes into the cache: its hash names the entry.
        cache_key = "crossfeed:token:" + token_digest(key)
        found = cache.get(cache_key)
        if found is None:
            found = self._look_up(key)
            cache.set(cache_key, found, seconds)
        return found

    def _look_up(self, key):
        from crossfeed.tokens.services import token_find

        token = token_find(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        # Read here, once per cache period, so that the profile (and its interface language) is cached with the
        # user; getattr: staff without a profile have none.
        getattr(token.user, "annotator", None)
        return token.user, token


def client_address(request: HttpRequest) -> str | None:
    """The address a sign-in came from, for the lockout: the peer's, or behind CROSSFEED_PROXY_COUNT proxies the
    entry of X-Forwarded-For that the outermost trusted proxy added (entries further left are the client's to
    forge)."""
    proxies = settings.CROSSFEED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """The page a locked-out sign-in gets, from the site's or the admin's login form (429)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
