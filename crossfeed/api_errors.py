"""DRF exception handler: domain errors from services become JSON responses with their status code, and no error
response grows with the request that caused it.

Every error body is bounded: at most MAX_ERRORS_SHOWN messages (the first ones, in the order the validators wrote
them), each at most MAX_MESSAGE_CHARS long, and when some were left out the body says how many there were
(`error_count`, `truncated`). An import's line errors ({line, field, message}) are capped by the import itself, with
their own count (CROSSFEED_MAX_IMPORT_ERRORS); here their texts are only shortened.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from crossfeed.busy import RETRY_AFTER_S, busy_message, is_database_busy
from crossfeed.errors import CrossfeedError

MAX_ERRORS_SHOWN = 100
# Enough for any message we write; a longer one quotes what the client sent, and that needs no more than a glimpse.
MAX_MESSAGE_CHARS = 1000


def exception_handler(exc, context):
    if isinstance(exc, CrossfeedError):
        # Line errors (exc.errors without field errors) come capped and counted by the import that found them.
        line_errors = bool(exc.errors) and not exc.field_errors
        body = _shortened(exc.as_dict()) if line_errors else bounded_errors(exc.as_dict())
        return Response(body, status=exc.status_code)
    if is_database_busy(exc):
        set_rollback()
        return Response({"detail": busy_message()}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict | list | str):
        response.data = bounded_errors(response.data)
    return response


def bounded_errors(body: Any, limit: int = MAX_ERRORS_SHOWN) -> Any:
    """The first `limit` messages of an error body (DRF's shape: messages in lists, under field names, nested as the
    input was), every message shortened, and the count of all of them when some were left out."""
    total = _count(body)
    if total <= limit:
        return _shortened(body)
    shown = _first(body, [limit])
    note = f"{total} errors; the first {limit} are shown"
    if isinstance(shown, dict):
        shown.setdefault("detail", note)
        shown.update(error_count=total, truncated=True)
    elif isinstance(shown, list):
        shown.append(note)
    return shown


def _count(node: Any) -> int:
    if isinstance(node, str):
        return 1
    if isinstance(node, dict):
        return sum(_count(value) for value in node.values())
    if isinstance(node, list | tuple):
        return sum(_count(value) for value in node)
    return 0


def _first(node: Any, budget: list[int]) -> Any:
    """A copy of `node` holding its first budget[0] messages (the budget is shared across the walk). A message past the
    budget is None and left out; an empty list or object stays, because DRF marks a valid list entry with `{}`."""
    if isinstance(node, str):
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        return _short(node)
    if isinstance(node, dict):
        fields: dict[str, Any] = {}
        for key, value in node.items():
            if budget[0] <= 0:
                break
            value = _first(value, budget)
            if value is not None:
                fields[_short(str(key))] = value
        return fields
    if isinstance(node, list | tuple):
        entries: list[Any] = []
        for value in node:
            if budget[0] <= 0:
                break
            value = _first(value, budget)
            if value is not None:
                entries.append(value)
        return entries
    return node


def _shortened(node: Any) -> Any:
    if isinstance(node, str):
        return _short(node)
    if isinstance(node, dict):
        return {_short(str(key)): _shortened(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_shortened(value) for value in node]
    return node


def _short(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[:MAX_MESSAGE_CHARS]}… ({len(text)} characters)"
