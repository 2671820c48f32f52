"""DRF's JSON parser, with two more kinds of bad body refused as a 400, and the same checks for JSON form fields.

Python's json module recurses once per nesting level, so a body of 100,000 "[" raises RecursionError, which DRF's
parser (it catches ValueError only) lets through as a 500. Here it is a parse error like any other.

A JSON string may hold a lone UTF-16 surrogate as an escape ("\\ud800"): Python decodes it to a string that UTF-8
cannot encode, so SQLite, psycopg and the JSON renderer all raise on it later, wherever the text goes (a comment, a
flag name, a dictionary key, an imported item). DRF's CharField refuses such text, but not every body passes through
one (the judgment endpoint checks its fields in the service; JSONField and dictionary keys are never checked), so
the parser refuses it once for every endpoint, naming where it is. A surrogate pair ("\\ud83d\\ude00") is one
character and passes. Form fields cannot carry one (Django decodes form data with errors="replace"), except a JSON
form field, which parses its text: JSONFormField below.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from crossfeed.errors import InvalidInput

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Enough to locate the problems; a body with thousands of them is refused all the same.
MAX_REPORTED = 20


def surrogate_code(text: str) -> str | None:
    """U+D800 for the first lone surrogate of `text`, or None."""
    found = LONE_SURROGATE.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def surrogate_message(code: str) -> str:
    """DRF's wording (its ProhibitSurrogateCharactersValidator), so that every endpoint says the same."""
    return f"Surrogate characters are not allowed: {code}."


def printable(text: str) -> str:
    """A text that may hold a lone surrogate, with it written as an escape: safe to put in a message."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogates(value: Any, *, limit: int = MAX_REPORTED) -> list[tuple[list[str | int], str]]:
    """(path, U+XXXX) of every string (value or object key) in a parsed JSON value that holds a lone surrogate,
    the first `limit` only. Iterative, because the value can be nested as deeply as the parser allowed."""
    found: list[tuple[list[str | int], str]] = []
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack and len(found) < limit:
        path, node = stack.pop()
        if isinstance(node, str):
            if code := surrogate_code(node):
                found.append((path, code))
        elif isinstance(node, dict):
            for key in reversed(list(node)):  # reversed: the stack pops them in the body's order
                # A bad key is reported as itself: its value cannot be named by a path anyway.
                stack.append(([*path, key], key if surrogate_code(key) else node[key]))
        elif isinstance(node, list):
            stack.extend(([*path, index], node[index]) for index in reversed(range(len(node))))
    return found


def path_text(path: list[str | int]) -> str:
    """prompt.text, responses[1].text, flags.12[0]: the way the import's errors name a field."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{printable(part)}" if text else printable(part))
    return text


def check_no_lone_surrogates(value: Any) -> None:
    """Raise InvalidInput (a 400) if a parsed JSON value holds lone surrogates.

    An object: {top-level field: ["<rest of the path>: message"]}, like DRF's errors by field. A list (the import's
    JSON array of items): {"detail": ..., "errors": [{line, field, message}]}, like the import's errors by line."""
    found = lone_surrogates(value)
    if not found:
        return
    if isinstance(value, list):
        errors = [{"line": path[0] + 1, "field": path_text(path[1:]), "message": surrogate_message(code)}
                  for path, code in found if path and isinstance(path[0], int)]
        more = f" (the first {MAX_REPORTED})" if len(errors) == MAX_REPORTED else ""
        raise InvalidInput(f"{len(errors)} text(s) hold a lone surrogate{more}; nothing was stored", errors=errors)
    if not isinstance(value, dict):
        raise InvalidInput(surrogate_message(found[0][1]))
    by_field: dict[str, list[str]] = {}
    for path, code in found:
        rest = path_text(path[1:])
        message = surrogate_message(code)
        by_field.setdefault(printable(str(path[0])), []).append(f"{rest}: {message}" if rest else message)
    raise InvalidInput("text with a lone surrogate", field_errors=by_field)


def may_hold_lone_surrogates(raw: bytes, value: Any, encoding: str = "utf-8") -> bool:
    """Cheap tests first, for the 32 MB import body: a surrogate can only come from a \\uD800-\\uDFFF escape
    (raw surrogate bytes are not UTF-8 and fail to decode), and the C encoder refuses a lone one far faster than
    a walk of the value finds it (a surrogate pair is one character by then and encodes). Measured on a 34 MB
    import body that parses in 0.24 s: the byte search 0.05 s, the encoding 0.36 s; a walk takes about as long
    as the parse (11.5 s against 10.5 s on a 447 MB body), so it runs only once the encoding has failed."""
    try:
        # In UTF-8 and the other ASCII-compatible charsets the escape has these bytes; in UTF-16 (a client may
        # say charset=utf-16) it has others, and only the encoding test below is sure.
        searchable = "\\ud".encode(encoding) == b"\\ud" and "\\uD".encode(encoding) == b"\\uD"
    except (LookupError, UnicodeError):
        searchable = False
    if searchable and raw.find(b"\\ud") < 0 and raw.find(b"\\uD") < 0:
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:
        return True  # as deep as the parser allowed: the iterative walk decides
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            value = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the JSON is nested too deeply") from None
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if may_hold_lone_surrogates(raw, value, encoding):
            check_no_lone_surrogates(value)
        return value


class JSONFormField(forms.JSONField):
    """forms.JSONField that refuses lone surrogates and nesting too deep to parse, instead of a 500.

    Shown again after an error, the field holds the text as typed (which is plain Unicode: the surrogate is an
    escape in it), never the decoded value, which the page could not encode."""

    default_error_messages = {
        "surrogate": _("%(where)s: a lone surrogate escape (%(code)s) is not a character; remove it."),
        "deep": _("The JSON is nested too deeply."),
    }

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(self.error_messages["deep"], code="deep") from None
        if found := lone_surrogates(converted, limit=1):
            path, code = found[0]
            raise forms.ValidationError(self.error_messages["surrogate"], code="surrogate",
                                        params={"where": path_text(path) or _("the value"), "code": code})
        return converted

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            value = json.loads(data, cls=self.decoder)
        except (json.JSONDecodeError, RecursionError):
            return forms.fields.InvalidJSONInput(data)
        if lone_surrogates(value, limit=1):
            return forms.fields.InvalidJSONInput(data)
        return value
