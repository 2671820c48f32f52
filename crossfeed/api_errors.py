"""DRF exception handler: domain errors from services become JSON responses with their status code."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from crossfeed.errors import CrossfeedError


def exception_handler(exc, context):
    if isinstance(exc, CrossfeedError):
        return Response(exc.as_dict(), status=exc.status_code)
    return drf_exception_handler(exc, context)
