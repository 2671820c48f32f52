"""DRF exception handler: domain errors from services become JSON responses with their status code."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from crossfeed.busy import RETRY_AFTER_S, busy_message, is_database_busy
from crossfeed.errors import CrossfeedError


def exception_handler(exc, context):
    if isinstance(exc, CrossfeedError):
        return Response(exc.as_dict(), status=exc.status_code)
    if is_database_busy(exc):
        set_rollback()
        return Response({"detail": busy_message()}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    return drf_exception_handler(exc, context)
