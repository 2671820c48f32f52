"""Markdown for untrusted text (guidelines, prompts, responses, comments), rendered safe.

Raw HTML in the source is not interpreted: Python-Markdown's HTML block and inline-HTML handlers are removed, so
`<script>` becomes the visible text "<script>". nh3 (Ammonia) then cleans the output as a second line of defence,
allowing only the tags Markdown itself produces and only http(s)/mailto links.
"""

from __future__ import annotations

import markdown
import nh3

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre",
    "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}


def _no_raw_html(md: markdown.Markdown) -> None:
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")


def render_markdown(text: str, *, line_breaks: bool = True) -> str:
    """Markdown → sanitised HTML. `line_breaks` keeps single newlines, as LLM output and poems need."""
    extensions = ["fenced_code", "tables", "sane_lists"] + (["nl2br"] if line_breaks else [])
    md = markdown.Markdown(extensions=extensions, output_format="html")
    _no_raw_html(md)
    html = md.convert(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
