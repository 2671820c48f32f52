"""Markdown for untrusted text (guidelines, prompts, responses, comments), rendered safe and in time linear in the
input.

The parser is cmark-gfm (through cmarkgfm), GitHub's fork of the C reference implementation of CommonMark, with the
GFM table, strikethrough and autolink extensions: the parser PyPI renders every package's README with, built and
fuzzed to run in linear time. It replaces Python-Markdown, which took 20 s for "[" × 10,000, 92 s for "[" × 20,000
and 85 s for one annotation page; cmark parses "[" × 100,000 in about 30 ms (tests/test_hardening_bounded.py holds
every known pathological input of 100,000 characters under a 2 s bound; the worst takes about 0.5 s on a busy
machine).

Raw HTML in the source is never interpreted: before parsing, every "<" that does not open an autolink
(`<https://…>`, `<name@example.org>`) becomes a noncharacter that cmark treats as plain text, and after rendering that
noncharacter becomes "&lt;". So `<script>` is the visible text "<script>", in code spans and blocks as everywhere.
nh3 (Ammonia) then cleans the output as a second line of defence, allowing only the tags Markdown itself produces and
only http(s)/mailto links. nh3's time grows with the square of the nesting depth (10,000 nested blockquotes: 0.8 s,
100,000: minutes) and with the size of the HTML, so output nested deeper than MAX_DEPTH, or more than MAX_GROWTH
times the size of the text, is replaced by the text itself shown plain (escaped, with its line breaks): nothing is
ever dropped.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from collections import OrderedDict

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre",
    "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
# `start` keeps a numbered list's numbering when a code block interrupts it ("1. … ``` … ``` 2. …", common in LLM
# answers); `align` is a table column's alignment.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "td": {"align"}, "th": {"align"}}
EXTENSIONS = ["table", "strikethrough", "autolink"]
# UNSAFE only stops cmark from blanking the target of a "javascript:" link (it would leave href="", a link to the page
# itself): no raw HTML reaches cmark at all, and nh3 removes such a target while keeping the link's words.
OPTIONS = Options.CMARK_OPT_UNSAFE

# Unicode noncharacter U+FDD0 stands in for "<" during parsing; one in the source is replaced first.
LESS_THAN = "\ufdd0"
# CommonMark's autolinks: a URI with a scheme, or an e-mail address. Each try stops at the next "<", so the scan is
# linear in the text.
AUTOLINK = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\x00-\x20]*"
                      r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+)>")
# nh3 reads all the HTML it is given: cmark's output is normally 1–3 times the size of its input, a table of
# one-character cells with alignments 14 times, but a few lines can declare a table of thousands of columns whose
# empty cells cmark fills in (5.6 MB for 100,000 characters, 4 s in nh3). Beyond this growth the text is shown plain.
MAX_GROWTH = 20
# Deeper than any real text nests (a quote in a list in a list…), far below where nh3's time starts to show.
MAX_DEPTH = 40
NESTING_TAG = re.compile(r"<(/?)(?:blockquote|ol|ul|li|em|strong|del|a|p|table|thead|tbody|tr|th|td|h[1-6]|pre"
                         r"|code)\b")


# The same texts are rendered again and again: an item's texts for each of its k annotators and at every reload,
# revision or refused submit, a campaign's guidelines and shared pivots on every page. Each process keeps the HTML of
# the texts it rendered last, keyed by a digest of the text (not the text itself), up to CACHE_CHARACTERS characters
# of HTML in all (a few MB); the oldest go first.
CACHE_CHARACTERS = 2_000_000
_cache: OrderedDict[tuple[bytes, bool], str] = OrderedDict()
_cache_characters = 0
_cache_lock = threading.Lock()


def render_markdown(text: str, *, line_breaks: bool = True) -> str:
    """Markdown → sanitised HTML. `line_breaks` keeps single newlines, as LLM output and poems need."""
    global _cache_characters
    text = text or ""
    key = (hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(), line_breaks)
    with _cache_lock:
        if (rendered := _cache.get(key)) is not None:
            _cache.move_to_end(key)
            return rendered
    rendered = _render(text, line_breaks=line_breaks)
    with _cache_lock:
        if key not in _cache and len(rendered) <= CACHE_CHARACTERS // 4:
            _cache[key] = rendered
            _cache_characters += len(rendered)
            while _cache_characters > CACHE_CHARACTERS:
                _cache_characters -= len(_cache.popitem(last=False)[1])
    return rendered


def _render(text: str, *, line_breaks: bool) -> str:
    text = _well_formed(text)
    options = OPTIONS | (Options.CMARK_OPT_HARDBREAKS if line_breaks else 0)
    rendered = cmarkgfm.markdown_to_html_with_extensions(_raw_html_as_text(text), options=options,
                                                         extensions=EXTENSIONS)
    if len(rendered) > MAX_GROWTH * len(text) + 10_000 or _too_deep(rendered):
        rendered = _plain(text, line_breaks=line_breaks)
    else:
        rendered = rendered.replace(LESS_THAN, "&lt;")
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def _well_formed(text: str) -> str:
    # A lone surrogate ("\ud800", valid in a JSON string) cannot be encoded as UTF-8 for the parser: show U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _raw_html_as_text(text: str) -> str:
    text = text.replace(LESS_THAN, "\ufffd")
    parts, end = [], 0
    for autolink in AUTOLINK.finditer(text):
        parts += [text[end:autolink.start()].replace("<", LESS_THAN), autolink.group()]
        end = autolink.end()
    parts.append(text[end:].replace("<", LESS_THAN))
    return "".join(parts)


def _too_deep(rendered: str) -> bool:
    depth = 0
    for tag in NESTING_TAG.finditer(rendered):
        depth += -1 if tag.group(1) else 1
        if depth > MAX_DEPTH:
            return True
    return False


def _plain(text: str, *, line_breaks: bool) -> str:
    paragraphs = [part for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
    separator = "<br>\n" if line_breaks else "\n"
    return "".join(f"<p>{separator.join(html.escape(line) for line in part.splitlines())}</p>\n"
                   for part in paragraphs)
