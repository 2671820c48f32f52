"""DRF's JSON parser, with one more kind of bad body refused as a 400.

Python's json module recurses once per nesting level, so a body of 100,000 "[" raises RecursionError, which DRF's
parser (it catches ValueError only) lets through as a 500. Here it is a parse error like any other.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the JSON is nested too deeply") from None
