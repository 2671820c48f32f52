"""OpenAI-compatible endpoints: registered by an admin, used as generators. One check behind the API and the admin.

Only hosts the operator allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS) can be registered, and the endpoint client
checks the host again before every request, so a host taken off the list later is not called either. The API key
is never stored: an endpoint names the environment variable that holds it on the worker.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from crossfeed.errors import InvalidInput
from generation.models import Endpoint

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# Crossfeed's own secrets: an admin must not be able to have the worker send them to an endpoint as its "API key".
OWN_SECRETS = frozenset({"SECRET_KEY", "DATABASE_URL", "EMAIL_HOST_PASSWORD", "EMAIL_HOST_PASSWORD_FILE",
                         "EMAIL_HOST_USER"})
OWN_PREFIXES = ("DJANGO_", "SECRET_KEY")


def key_variable_problem(name: str) -> str:
    """Why `name` cannot hold an endpoint's key ("" when it can)."""
    if not ENV_NAME_RE.fullmatch(name):
        return "the name of an environment variable (letters, digits, _), or empty for no key"
    if name.upper() in OWN_SECRETS or name.upper().startswith(OWN_PREFIXES):
        return (f"{name} holds one of Crossfeed's own secrets and is never sent to an endpoint: put the endpoint's "
                "key in a variable of its own (e.g. OPENAI_API_KEY)")
    return ""


def endpoint_check(*, name: Any, base_url: Any, model: Any, api_key_env: Any = "", timeout_seconds: Any = 60.0,
                   max_retries: Any = 2, concurrency: Any = 4, endpoint: Endpoint | None = None
                   ) -> dict[str, list[str]]:
    """Every rule about an endpoint, as errors by field ({} when valid); `endpoint`: the one being changed."""
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        errors["name"] = ["required, at most 200 characters"]
    elif Endpoint.objects.filter(name__iexact=name.strip()).exclude(pk=getattr(endpoint, "pk", None)).exists():
        errors["name"] = [f"an endpoint named {name.strip()!r} already exists"]
    if url_problem := _url_problem(base_url):
        errors["base_url"] = [url_problem]
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        errors["model"] = ["required: the model's name at the endpoint (at most 200 characters)"]
    if not isinstance(api_key_env, str):
        errors["api_key_env"] = ["the name of an environment variable (letters, digits, _), or empty for no key"]
    elif api_key_env and (problem := key_variable_problem(api_key_env)):
        errors["api_key_env"] = [problem]
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int | float) \
            or not math.isfinite(timeout_seconds) or not 1 <= timeout_seconds <= 600:
        errors["timeout_seconds"] = ["seconds per request, from 1 to 600"]
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= 10:
        errors["max_retries"] = ["a whole number from 0 to 10"]
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        errors["concurrency"] = ["a whole number from 1 to 64"]
    return errors


def _url_problem(base_url: Any) -> str:
    from generation.backends.endpoint import allowed

    if not isinstance(base_url, str) or len(base_url) > 500:
        return "required: the server's URL up to and including /v1, e.g. http://127.0.0.1:8001/v1"
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{base_url[:100]!r} is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL with a host, up to and including /v1, e.g. http://127.0.0.1:8001/v1"
    if parts.username or parts.password:
        return "no user or password in the URL: put the key in the environment variable named by api_key_env"
    if not allowed(base_url, settings.CROSSFEED_GENERATION_ALLOWED_HOSTS):
        hosts = ", ".join(settings.CROSSFEED_GENERATION_ALLOWED_HOSTS) or "none yet"
        return (f"the host {parts.netloc!r} is not among the hosts generation may call "
                f"(CROSSFEED_GENERATION_ALLOWED_HOSTS: {hosts}); the operator adds it there")
    return ""


@transaction.atomic
def endpoint_create(*, name: str, base_url: str, model: str, api_key_env: str = "", timeout_seconds: float = 60.0,
                    max_retries: int = 2, concurrency: int = 4, notes: str = "", created_by=None) -> Endpoint:
    errors = endpoint_check(name=name, base_url=base_url, model=model, api_key_env=api_key_env,
                            timeout_seconds=timeout_seconds, max_retries=max_retries, concurrency=concurrency)
    if errors:
        raise InvalidInput("invalid endpoint", field_errors=errors)
    return Endpoint.objects.create(
        name=name.strip(), base_url=base_url, model=model.strip(), api_key_env=api_key_env,
        timeout_seconds=float(timeout_seconds), max_retries=max_retries, concurrency=concurrency, notes=notes or "",
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
