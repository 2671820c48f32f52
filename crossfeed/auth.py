"""Authentication: API tokens looked up by their hash with a short per-process cache, and the sign-in lockout's
page and client address (django-axes, settings.py).

Every annotation call authenticates; looking the token and its user up costs a query each time. Caching the answer
for TOKEN_CACHE_SECONDS (default 30, 0 turns it off) saves that query on the hot path; the price is that a deleted
token or a deactivated user keeps working for at most that long in each process.

A signed-in browser's user is cached the same way, for the same time (`SessionUserMiddleware`): every page request
read the user row through the ORM, 0.5 ms of an annotator's 6 ms submit (docs/benchmarks.md, "Annotators' page
path"). Django's checks stay: the session's hash must match the user's password hash (a password change ends the
other sessions), a deactivated user is refused; and saving or deleting a user forgets their cached row at once in
the process that did it, so only a change made in another process (or by a bulk UPDATE) waits out the period.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

T = TypeVar("T")


def cached_for_token_period(cache_key: str, look_up: Callable[[], T | None]) -> T | None:
    """look_up()'s answer, kept TOKEN_CACHE_SECONDS in the cache (0: looked up every time); None is never kept."""
    seconds = settings.TOKEN_CACHE_SECONDS
    if seconds <= 0:
        return look_up()
    found = cache.get(cache_key)
    if found is None:
        found = look_up()
        if found is not None:
            cache.set(cache_key, found, seconds)
    return found


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

        # The key itself never goes into the cache: its hash names the entry.
        return cached_for_token_period("crossfeed:token:" + token_digest(key), lambda: self._look_up(key))

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


class SessionUserMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware (settings.MIDDLEWARE), its `request.user` read through `session_user`."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _request_user(request))


def _request_user(request: HttpRequest):
    if not hasattr(request, "_cached_user"):  # the attribute Django's middleware keeps the user of a request in
        request._cached_user = session_user(request)
    return request._cached_user


def session_user(request: HttpRequest):
    """django.contrib.auth.get_user(request), the user row cached as API tokens are (cached_for_token_period).

    The fast path takes the cached user only where Django would take the fresh one: the session names a configured
    backend, the backend found an active user, and the session's hash matches that user's password hash. Anything
    else (signed out, no hash, a mismatch, a session kept through SECRET_KEY_FALLBACKS) goes to Django's own
    get_user on a fresh read, which refuses and flushes the session as it always did."""
    session = request.session
    try:
        user_id, backend_path = session[SESSION_KEY], session[BACKEND_SESSION_KEY]
    except KeyError:
        return auth.get_user(request)
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return auth.get_user(request)
    key = _session_user_key(backend_path, user_id)
    # The backend's get_user refuses an inactive user (None, never cached): deactivating someone ends their
    # sessions within the period in every process, and at once in the process that saved the change.
    user = cached_for_token_period(key, lambda: load_backend(backend_path).get_user(user_id))
    if user is not None and constant_time_compare(session_hash, user.get_session_auth_hash()):
        return user
    # The cached row may predate the person's own password change (made in another process): read afresh.
    cache.delete(key)
    return auth.get_user(request)


def _session_user_key(backend_path: str, user_id) -> str:
    return f"crossfeed:session-user:{backend_path}:{user_id}"


# Registered when this module is imported, which the middleware's loading does before any user can be cached.
@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="crossfeed-forget-session-user-saved")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="crossfeed-forget-session-user-deleted")
def _forget_session_user(sender, instance, **kwargs) -> None:
    """A saved user (deactivated, a new password, staff rights changed) or a deleted one is read afresh next time."""
    cache.delete_many([_session_user_key(path, instance.pk) for path in settings.AUTHENTICATION_BACKENDS])


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
