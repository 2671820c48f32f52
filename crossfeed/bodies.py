"""The size of a request body, known before any of it is read."""

from __future__ import annotations


def declared_length(request) -> int:
    """Content-Length as Django reads it (a missing or malformed header counts as 0, and then Django reads nothing:
    gunicorn hands a chunked body over without a length, and Django's stream then stops at 0 bytes)."""
    meta = getattr(request, "META", {})
    try:
        return max(0, int(meta.get("CONTENT_LENGTH") or 0))
    except (TypeError, ValueError):
        return 0
