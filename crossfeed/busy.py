"""A database too busy to take a write within its busy timeout is a temporary condition, not a server error.

On SQLite every writer queues on one lock for SQLITE_BUSY_TIMEOUT seconds; a writer still waiting after that gets
"database is locked". The request changed nothing (its transaction never began, or was rolled back), so the
honest answer is 503 with Retry-After: the client sends the same request again (a judgment with the same
idempotency key), instead of a 500 that reads like a bug. The API's exception handler and this middleware (for
the HTML pages) both use it.
"""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.utils.translation import gettext as _

RETRY_AFTER_S = 2


def is_database_busy(exc: BaseException) -> bool:
    # SQLite's SQLITE_BUSY and SQLITE_LOCKED both read "... is locked" ("database is locked", "database table is
    # locked"); any other OperationalError (a missing table, a broken connection) stays a 500.
    return isinstance(exc, OperationalError) and "is locked" in str(exc)


def busy_message() -> str:
    return _("The database is busy; nothing was saved. Retry in a few seconds.")


class DatabaseBusyMiddleware:
    """Turns "database is locked" from an HTML view into a 503 page with Retry-After."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_busy(exception):
            return None
        response = HttpResponse(f"<!doctype html><title>503</title><p>{escape(busy_message())}</p>", status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
