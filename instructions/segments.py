"""Protected segments: code, maths, URLs and placeholders are taken out before translation and put back after.

`protect(text)` replaces each protected span with a numbered mask, `<x0/>`, `<x1/>` ...; the translator sees the
masked text; `restore(translated, segments)` puts the spans back and reports what went wrong, so a job can mark the
row instead of keeping a translation whose code or URL was lost. Pure Python (no Django): the translation worker and
the tests call it directly.

What is protected, in this order (an earlier kind wins where two overlap, so a URL inside a code block stays part of
the block, and a link's address stays part of its ``<a href="…">`` tag):

1. Fenced code blocks (```` ``` ```` or ``~~~`` opening a line, up to the matching fence or the end of the text).
2. Display maths: ``$$ … $$`` and ``\\[ … \\]``.
3. Inline code: `` `…` `` with any number of backticks.
4. Inline maths: ``\\( … \\)`` and ``$…$`` under Pandoc's rule (the opening ``$`` has a non-space right after it,
   the closing one a non-space right before it and no digit right after it), so "$5 and $10" stays prose.
5. HTML tags as tags only (``<b>``, ``</a>``, ``<a href="…">``, ``<br/>``): the words between them are translated.
   Only known HTML element names count, so "if x<y and y>z" is not taken for a tag.
6. URLs (``http(s)://``, ``www.``) and e-mail addresses; trailing punctuation (also Arabic ``،`` and ``؟``, the
   Devanagari danda) is left outside, and a closing bracket only when the URL opened none; CJK characters end a
   URL, since Chinese and Japanese text often runs on after one without a space.
7. Placeholders: ``{{name}}``, ``{name}``/``{0}``/``{}``/``{name:>10}``, printf ``%s``, ``%d``, ``%.2f``, ``%1$s``,
   ``%(name)s`` (no space flag, so "50% discount" stays prose).
8. Text that already looks like one of our masks, so that a literal ``<x3/>`` in the source cannot be confused with
   a mask on the way back.

Numbers are **not** protected: a translation writes numbers the target language's way (Arabic-Indic or Devanagari
digits, a decimal comma, a thousands separator) and inflects the words around them ("1 apple", "2 apples"), which a
masked number would hide from the translator. The quality check, not this module, looks at what happened to them.

Why ``<x0/>``: an empty XML element is how translation tools mark inline code that must not be translated (XLIFF's
``<x id="…"/>``; DeepL's and Google's tag handling keep markup), and instruction-following models, trained on much
HTML and XML, copy such tags when asked to keep them. The short form leaves a seq2seq model (NLLB) few pieces to
break: it is three or four SentencePiece pieces made of characters every such vocabulary has, whereas brackets like
``⟦0⟧`` may not be in the vocabulary at all and come out as ``<unk>``. No inline form is reliable with NLLB, which was
not trained on tagged text and often drops tags (reported on fairseq, CTranslate2 and eole), so restoring is
tolerant and every loss is reported: a job translates block segments (a line that is only a mask) by not sending
them at all (`translatable_parts`) and marks a row whose inline masks did not survive.

Restoring tolerates what translators do to masks: spaces inside (``< x0 / >``), upper case, full-width brackets
(``＜x0／＞``), an opening/closing pair (``<x0></x0>``) or an unclosed ``<x0>``, a different order, and moved
line breaks: a block segment (a fenced block or display maths that stood on its own lines) is put back on its own
lines even when the translator joined them. A mask that is missing, appears twice or more, or was mangled (``x0/>``,
``<x0``, a number no segment has) is reported as a `Problem`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

KIND_MASK_LIKE = "mask-like"
KIND_CODE_BLOCK = "code-block"
KIND_DISPLAY_MATH = "display-math"
KIND_INLINE_CODE = "inline-code"
KIND_INLINE_MATH = "inline-math"
KIND_URL = "url"
KIND_EMAIL = "email"
KIND_PLACEHOLDER = "placeholder"
KIND_HTML_TAG = "html-tag"

PROBLEM_MISSING = "missing"
PROBLEM_DUPLICATED = "duplicated"
PROBLEM_MANGLED = "mangled"
PROBLEM_UNKNOWN = "unknown"

_HTML_ELEMENTS = (
    "a abbr address article aside audio b bdi bdo blockquote body br button caption center cite code col colgroup "
    "dd del details dfn div dl dt em figcaption figure font footer form h1 h2 h3 h4 h5 h6 head header hr html i "
    "iframe img input ins kbd label li link main mark meta nav ol option p pre q s samp script section select small "
    "source span strike strong style sub summary sup table tbody td textarea tfoot th thead title tr tt u ul var "
    "video wbr"
)

# Each kind's pattern, in the order of the module docstring.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (KIND_CODE_BLOCK, re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*(?P=fence)[`~]*[ \t]*$|\Z)",
                                 re.DOTALL | re.MULTILINE)),
    (KIND_DISPLAY_MATH, re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]", re.DOTALL)),
    (KIND_INLINE_CODE, re.compile(r"(?P<ticks>`+)[^`\n][^\n]*?(?P=ticks)(?!`)")),
    (KIND_INLINE_MATH, re.compile(r"\\\(.+?\\\)|\$(?=\S)[^$\n]*?(?<=\S)\$(?!\d)")),
    (KIND_HTML_TAG, re.compile(rf"</?(?:{'|'.join(_HTML_ELEMENTS.split())})\b(?:\s[^<>]*)?/?>", re.IGNORECASE)),
    # Chinese or Japanese often runs on after a URL without a space: CJK characters and full-width forms end it.
    (KIND_URL, re.compile(r"(?<![A-Za-z0-9])(?:https?://|www\.)[^\s<>\"'`\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]+",
                          re.IGNORECASE)),
    (KIND_EMAIL, re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)),
    (KIND_PLACEHOLDER, re.compile(r"\{\{\s*[\w.]+\s*\}\}|\{[\w.]*(?:![rsa])?(?::[^{}\s]*)?\}|"
                                  r"%(?:\d+\$|\(\w+\))?[-+#0]*\d*(?:\.\d+)?[sdifeEgGxXoc]\b")),
    (KIND_MASK_LIKE, re.compile(r"[<＜]\s*/?\s*[xX]\s*\d+\s*[/／]?\s*[>＞]")),
)
_BLOCK_KINDS = frozenset({KIND_CODE_BLOCK, KIND_DISPLAY_MATH})

# A mask as a translator may hand it back: spaces, case, full-width brackets, the slash lost or moved.
# A lone closing "</x0>" still marks the place.
_MASK_IN_OUTPUT = re.compile(r"[<＜]\s*[/／]?\s*[xX]\s*(?P<index>\d+)\s*[/／]?\s*[>＞]")
# What is left of a mask after the good ones are taken out: "<x0" (unclosed), "x0/>" (opened by nothing), "<x/>".
_MASK_DEBRIS = re.compile(
    r"[<＜]\s*[/／]?\s*[xX]\s*\d+|\b[xX]\s*\d+\s*[/／]\s*[>＞]|[<＜]\s*[/／]?\s*[xX]\s*[/／]?\s*[>＞]"
)


@dataclass(frozen=True)
class Segment:
    """One protected span: its number in the mask, what kind it is, its exact text, and whether it stood on lines
    of its own (then `restore` puts it back on lines of its own)."""

    index: int
    kind: str
    text: str
    block: bool = False

    @property
    def mask(self) -> str:
        return mask_for(self.index)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for a job that stores the segments between protecting and restoring."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Segment:
        return cls(index=int(value["index"]), kind=str(value["kind"]), text=str(value["text"]),
                   block=bool(value.get("block", False)))


@dataclass(frozen=True)
class Problem:
    """What went wrong with one mask on the way back; `index` is None for debris that names no segment."""

    kind: str
    index: int | None
    detail: str


def mask_for(index: int) -> str:
    return f"<x{index}/>"


def _spans(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans, earlier kinds first: a span overlapping a taken one is skipped."""
    taken: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == KIND_URL:
                end = start + len(_trim_url(match.group()))
            if end <= start or any(start < other_end and other_start < end for other_start, other_end, _ in taken):
                continue
            taken.append((start, end, kind))
    return sorted(taken)


def _trim_url(url: str) -> str:
    """Leave sentence punctuation after a URL outside it: "see https://a.org/x." ends the URL before the dot."""
    while url:
        last = url[-1]
        if last == ")" and url.count("(") >= url.count(")"):
            break
        if last == "/" or not unicodedata.category(last).startswith("P"):
            break
        url = url[:-1]
    return url


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] has nothing but spaces before it on its first line and after it on its last."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    after = text[end:] if line_end == -1 else text[end:line_end]
    return not text[line_start:start].strip() and not after.strip()


def protect(text: str) -> tuple[str, list[Segment]]:
    """The text with every protected span replaced by its mask, and the segments in mask order."""
    pieces: list[str] = []
    segments: list[Segment] = []
    position = 0
    for start, end, kind in _spans(text):
        block = kind in _BLOCK_KINDS and _stands_alone(text, start, end)
        segment = Segment(index=len(segments), kind=kind, text=text[start:end], block=block)
        pieces.extend((text[position:start], segment.mask))
        segments.append(segment)
        position = end
    pieces.append(text[position:])
    return "".join(pieces), segments


def translatable_parts(masked: str) -> list[tuple[str, bool]]:
    """The masked text cut into (part, translate?) runs: lines that hold only masks are not to be translated.

    A seq2seq model (NLLB) translates sentence by sentence and drops line breaks and tags; sending it the prose
    between code blocks, and passing the blocks' masks through untouched, keeps the blocks whatever it does.
    Joining the parts (translated or not) in order gives the masked text back.
    """
    parts: list[tuple[str, bool]] = []
    for line in masked.splitlines(keepends=True):
        translate = bool(_MASK_IN_OUTPUT.sub("", line).strip())
        if parts and parts[-1][1] == translate:
            parts[-1] = (parts[-1][0] + line, translate)
        else:
            parts.append((line, translate))
    return parts


def _as_block(text: str, start: int, end: int, segment_text: str) -> str:
    """The segment's text with the line breaks it needs to stand on its own lines at text[start:end]."""
    before = "" if start == 0 or text[:start].endswith("\n") else "\n"
    after = "" if end == len(text) or text[end:].startswith("\n") else "\n"
    return before + segment_text + after


def restore(translated: str, segments: list[Segment]) -> tuple[str, list[Problem]]:
    """The translation with every mask replaced by its segment's text, and the problems found on the way.

    Every occurrence of a known mask is replaced (a duplicated mask duplicates its segment, and is reported); a
    mask whose number no segment has, and mask debris, are left in place and reported, so nothing is lost silently.
    """
    by_index = {segment.index: segment for segment in segments}
    # An opening/closing pair ("<x0></x0>", "<x0> </x0>") is one mask that the translator wrote as an element.
    text = re.sub(r"[<＜]\s*[xX]\s*(\d+)\s*[>＞]\s*[<＜]\s*[/／]\s*[xX]\s*\1\s*[>＞]", r"<x\1/>", translated)
    seen: dict[int, int] = {}
    problems: list[Problem] = []
    pieces: list[str] = []
    position = 0
    for match in _MASK_IN_OUTPUT.finditer(text):
        index = int(match.group("index"))
        segment = by_index.get(index)
        if segment is None:
            problems.append(Problem(PROBLEM_UNKNOWN, index, f"{match.group()!r}: no segment has number {index}"))
            continue
        seen[index] = seen.get(index, 0) + 1
        replacement = segment.text
        if segment.block:
            replacement = _as_block(text, match.start(), match.end(), replacement)
        pieces.extend((text[position:match.start()], replacement))
        position = match.end()
    pieces.append(text[position:])
    problems.extend(_count_problems(segments, seen))
    problems.extend(_debris_problems(_MASK_IN_OUTPUT.sub("", text)))
    return "".join(pieces), problems


def _count_problems(segments: list[Segment], seen: dict[int, int]) -> list[Problem]:
    problems = []
    for segment in segments:
        count = seen.get(segment.index, 0)
        named = f"{segment.mask} ({segment.kind} {_preview(segment.text)})"
        if count == 0:
            problems.append(Problem(PROBLEM_MISSING, segment.index, f"{named} is not in the output"))
        elif count > 1:
            problems.append(Problem(PROBLEM_DUPLICATED, segment.index, f"{named} appears {count} times"))
    return problems


def _debris_problems(text: str) -> list[Problem]:
    problems = []
    for match in _MASK_DEBRIS.finditer(text):
        number = re.search(r"\d+", match.group())
        problems.append(Problem(PROBLEM_MANGLED, int(number.group()) if number else None,
                                f"{match.group()!r} looks like a damaged mask"))
    return problems


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
