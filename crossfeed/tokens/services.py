"""Issue and look up API tokens (models.py says why only a hash is kept). The key is shown once, when issued."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from crossfeed.tokens.models import APIToken

# 20 random bytes as 40 hex digits: the shape of the DRF keys issued before, which clients may have stored.
KEY_BYTES = 20
PREFIX_CHARS = 8


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _new(user_id: int) -> tuple[str, APIToken]:
    key = secrets.token_hex(KEY_BYTES)
    return key, APIToken(user_id=user_id, prefix=key[:PREFIX_CHARS], digest=token_digest(key))


@transaction.atomic
def token_issue(*, user: AbstractBaseUser, replace: bool = False) -> str:
    """A new key for the user; with replace, the user's other tokens stop working (in each process after at most
    TOKEN_CACHE_SECONDS, crossfeed/auth.py)."""
    if replace:
        APIToken.objects.filter(user=user).delete()
    key, token = _new(user.pk)
    token.save()
    return key


def tokens_issue_many(*, users: Iterable[AbstractBaseUser]) -> list[str]:
    """One new key per user, in the users' order, in one INSERT (seeding many annotators at once)."""
    issued = [_new(user.pk) for user in users]
    APIToken.objects.bulk_create([token for _key, token in issued])
    return [key for key, _token in issued]


def token_find(key: str) -> APIToken | None:
    return APIToken.objects.select_related("user").filter(digest=token_digest(key)).first()
