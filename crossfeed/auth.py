"""API token authentication with a short per-process cache.

Every annotation call authenticates; DRF's TokenAuthentication reads the token and its user each time. Caching the
answer for TOKEN_CACHE_SECONDS (default 30, 0 turns it off) saves that query on the hot path; the price is that a
deleted token or a deactivated user keeps working for at most that long in each process.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from rest_framework.authentication import TokenAuthentication


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        seconds = settings.TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return super().authenticate_credentials(key)
        # The key itself never goes into the cache: a hash of it names the entry.
        cache_key = "crossfeed:token:" + hashlib.sha256(key.encode()).hexdigest()
        found = cache.get(cache_key)
        if found is None:
            found = super().authenticate_credentials(key)
            cache.set(cache_key, found, seconds)
        return found
