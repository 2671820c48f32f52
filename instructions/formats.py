"""Instruction set files, parsed and checked record by record (docs/instruction-sets.md). Pure: no database.

Two formats, told apart per record and required to be the same for a whole file:

- **Alpaca**: objects with `instruction`, optional `input`, `output`; as a JSON array (Alpaca's own
  `alpaca_data.json`) or as JSONL, one object per line.
- **TRL messages**: JSONL (or an array) of `{"messages": [{"role", "content"}, ...]}`: an optional system turn, then
  user and assistant turns alternating, from a user turn to an assistant turn.

Both may carry an `id` (the row's external id) and a `metadata` object; any other field is refused, as the item
import refuses one (a misspelt `ouput` would otherwise be lost without a word). Errors are the item import's
{line, field, message}; a JSON array's element is named by the line it starts on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from annotation.item_format import EXTERNAL_ID_RE, ImportError_, iter_jsonl
from annotation.item_format import Limits as LineLimits

ALPACA, MESSAGES = "alpaca", "messages"
FORMATS = (ALPACA, MESSAGES)
ALPACA_KEYS = {"id", "instruction", "input", "output", "metadata"}
MESSAGES_KEYS = {"id", "messages", "metadata"}
TURN_KEYS = {"role", "content"}
SYSTEM, USER, ASSISTANT = "system", "user", "assistant"
# Turns in one conversation: enough for any multi-turn SFT set we know of (UltraChat's longest are ~30).
MAX_TURNS = 64
# A row's metadata is provenance (source, licence, category), not content: bounded as a response's is.
MAX_METADATA_BYTES = 16 * 1024
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int = 20_000  # instruction, input, system and user turns
    max_response_chars: int = 20_000  # output and assistant turns
    max_line_bytes: int = 1_000_000  # one JSONL line
    # A JSON array is parsed whole, so its size is bounded (Alpaca's 52,002 rows are 22 MB); JSONL has no such bound.
    max_array_bytes: int = 100 * 1024 * 1024
    max_errors: int = 100  # errors listed; all are counted


@dataclass(frozen=True)
class InstructionRecord:
    line: int
    format: str
    external_id: str  # "" when the file gives none: the import names the row after its set and index
    messages: list[dict]  # normalised [{role, content}], for either format
    instruction: str = ""
    input: str = ""
    output: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class CheckedFile:
    """What a whole file holds: its format, how many rows, the first errors and their count."""

    format: str | None = None
    rows: int = 0
    errors: list[ImportError_] = field(default_factory=list)
    error_count: int = 0
    given_ids: set[str] = field(default_factory=set)
    unnamed: list[int] = field(default_factory=list)  # indices of rows without an id

    def add(self, errors: list[ImportError_], keep: int) -> None:
        self.error_count += len(errors)
        self.errors.extend(errors[: max(keep - len(self.errors), 0)])


def alpaca_messages(instruction: str, input_text: str, output: str) -> list[dict]:
    """The Alpaca record as a conversation: the input follows the instruction after a blank line, as Alpaca's own
    prompt template puts it below the instruction."""
    user = f"{instruction}\n\n{input_text}" if input_text.strip() else instruction
    return [{"role": USER, "content": user}, {"role": ASSISTANT, "content": output}]


def check_file(stream: IO[bytes], limits: Limits) -> CheckedFile:
    """Read the whole file once and check every record, and across records: one format, ids unique."""
    checked = CheckedFile()
    first_line: dict[str, int] = {}
    format_line = 0
    for line, record, errors in iter_records(stream, limits):
        checked.add(errors, limits.max_errors)
        if record is None:
            continue
        if checked.format is None:
            checked.format, format_line = record.format, line
        elif record.format != checked.format:
            checked.add([ImportError_(line, "", f"this record is in the {record.format} format, the file's first "
                                                f"(line {format_line}) in the {checked.format} format: one set "
                                                "holds one format")], limits.max_errors)
            continue
        if record.external_id:
            if record.external_id in first_line:
                checked.add([ImportError_(line, "id", f"{record.external_id!r} already used on line "
                                                      f"{first_line[record.external_id]}")], limits.max_errors)
                continue
            first_line[record.external_id] = line
        else:
            checked.unnamed.append(checked.rows)
        checked.rows += 1
    checked.given_ids = set(first_line)
    if checked.rows == 0 and checked.error_count == 0:
        checked.add([ImportError_(0, "", "empty file: no records")], limits.max_errors)
    return checked


def iter_records(stream: IO[bytes], limits: Limits) -> Iterator[tuple[int, InstructionRecord | None, list]]:
    """(line, record or None, errors) for every record of a JSONL file or a JSON array; the stream is seekable."""
    start = stream.tell()
    first = _first_byte(stream)
    if not first:
        return  # nothing but white space and a byte order mark: an empty file
    stream.seek(start)
    is_array = first == b"["
    values = _iter_array(stream, limits) if is_array else iter_jsonl(stream, LineLimits(
        max_line_bytes=limits.max_line_bytes))
    for line, value, error in values:
        if error is not None:
            yield line, None, [error]
            continue
        record, errors = check_record(value, line, limits)
        yield line, record, errors


def _first_byte(stream: IO[bytes]) -> bytes:
    """The first byte that is not a byte order mark or white space; b"" for a file of nothing else."""
    head = stream.read(len(BOM))
    chunk = head[len(BOM):] if head == BOM else head
    while True:
        stripped = chunk.lstrip(b" \t\r\n")
        if stripped:
            return stripped[:1]
        chunk = stream.read(64 * 1024)
        if not chunk:
            return b""


def _iter_array(stream: IO[bytes], limits: Limits) -> Iterator[tuple[int, Any, ImportError_ | None]]:
    """The elements of a top-level JSON array, each with the line it starts on. A syntax error ends the file: after
    it, nothing tells where the next element starts."""
    raw = stream.read(limits.max_array_bytes + 1)
    if len(raw) > limits.max_array_bytes:
        yield 0, None, ImportError_(0, "", f"a JSON array file is larger than {limits.max_array_bytes} bytes; write "
                                           "it as JSONL (one object per line), which has no size limit")
        return
    raw = raw.removeprefix(BOM)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        yield line, None, ImportError_(line, "", "not valid UTF-8")
        return
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0) + 1  # past the "["
    line, counted = 1, 0
    while True:
        pos = _skip_space(text, pos)
        line, counted = line + text.count("\n", counted, pos), pos
        if text.startswith("]", pos):
            if rest := text[pos + 1:].strip():
                yield line, None, ImportError_(line, "", f"unexpected text after the array: {rest[:20]!r}")
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except RecursionError:
            yield line, None, ImportError_(line, "", "JSON is nested too deeply")
            return
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, ImportError_(exc.lineno, "", f"not valid JSON: {exc.msg} (column {exc.colno})")
            return
        yield line, value, None
        pos = _skip_space(text, end)
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            line = line + text.count("\n", counted, pos)
            yield line, None, ImportError_(line, "", "not valid JSON: expected ',' or ']' after an element of the "
                                                     "array")
            return


def _skip_space(text: str, pos: int) -> int:
    """The position of the first character at or after `pos` that is not JSON white space."""
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def check_record(value: Any, line: int, limits: Limits) -> tuple[InstructionRecord | None, list[ImportError_]]:
    errors: list[ImportError_] = []

    def fail(where: str, message: str) -> None:
        errors.append(ImportError_(line, where, message))

    if not isinstance(value, dict):
        fail("", f"expected a JSON object, got {_type_name(value)}")
        return None, errors
    kind = MESSAGES if "messages" in value else ALPACA if "instruction" in value or "output" in value else None
    if kind is None:
        fail("", "expected an Alpaca record (instruction, input, output) or a messages record (messages)")
        return None, errors
    allowed = MESSAGES_KEYS if kind == MESSAGES else ALPACA_KEYS
    for key in sorted(set(value) - allowed):
        fail(_printable(key), f"unknown field (allowed: {', '.join(sorted(allowed))})")
    external_id = _check_id(value.get("id"), fail)
    metadata = _check_metadata(value.get("metadata", {}), fail)
    if kind == MESSAGES:
        messages = _check_messages(value.get("messages"), limits, fail)
        texts = {}
    else:
        texts = {
            "instruction": _check_text(value.get("instruction"), "instruction", limits.max_prompt_chars, fail),
            "input": _check_text(value.get("input", ""), "input", limits.max_prompt_chars, fail, optional=True),
            "output": _check_text(value.get("output"), "output", limits.max_response_chars, fail),
        }
        messages = alpaca_messages(texts["instruction"], texts["input"], texts["output"])
    if errors:
        return None, errors
    return InstructionRecord(line=line, format=kind, external_id=external_id, messages=messages,
                             metadata=metadata, **texts), []


def _check_id(value: Any, fail) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)  # Alpaca derivatives number their rows
    if isinstance(value, str) and EXTERNAL_ID_RE.fullmatch(value):
        return value
    fail("id", "expected a whole number or 1–200 characters: letters, digits and . _ : @ / + -")
    return ""


def _check_messages(turns: Any, limits: Limits, fail) -> list[dict]:
    if not isinstance(turns, list):
        fail("messages", f"expected a list of turns {{role, content}}, got {_type_name(turns)}")
        return []
    if not 2 <= len(turns) <= MAX_TURNS:
        fail("messages", f"expected 2–{MAX_TURNS} turns (at least one user and one assistant turn), got {len(turns)}")
        return []
    messages: list[dict] = []
    for index, turn in enumerate(turns):
        where = f"messages[{index}]"
        if not isinstance(turn, dict):
            fail(where, f"expected an object with role and content, got {_type_name(turn)}")
            continue
        for key in sorted(set(turn) - TURN_KEYS):
            fail(f"{where}.{_printable(key)}", "unknown field (allowed: content, role)")
        role = turn.get("role")
        if role not in (SYSTEM, USER, ASSISTANT):
            fail(f"{where}.role", f"expected system, user or assistant, got {_shown(role)}")
            continue
        limit = limits.max_response_chars if role == ASSISTANT else limits.max_prompt_chars
        messages.append({"role": role, "content": _check_text(turn.get("content"), f"{where}.content", limit, fail)})
    if len(messages) == len(turns):
        _check_turn_order([message["role"] for message in messages], fail)
    return messages


def _check_turn_order(roles: list[str], fail) -> None:
    """An optional system turn first, then user, assistant, user, ... ending with an assistant turn: the first
    turn out of order is named."""
    start = 1 if roles[0] == SYSTEM else 0
    for index in range(start, len(roles)):
        expected = USER if (index - start) % 2 == 0 else ASSISTANT
        if roles[index] != expected:
            where = "a system turn may only come first" if roles[index] == SYSTEM else (
                "turns alternate user, assistant after an optional system turn")
            fail(f"messages[{index}].role", f"expected {expected}, got {roles[index]}: {where}")
            return
    if roles[-1] != ASSISTANT:
        fail("messages", "the last turn must be the assistant's: it is what the model learns to write")


def _check_metadata(metadata: Any, fail) -> dict:
    if not isinstance(metadata, dict):
        fail("metadata", f"expected an object, got {_type_name(metadata)}")
        return {}
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        fail("metadata", "holds a lone surrogate escape (\\ud800–\\udfff), which is not a character: remove it")
        return {}
    except (ValueError, RecursionError):
        fail("metadata", "holds NaN or Infinity, or is nested too deeply: write null or a string")
        return {}
    if len(encoded) > MAX_METADATA_BYTES:
        fail("metadata", f"{len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES} (16 KiB): keep "
                         "provenance here, not texts")
        return {}
    return metadata


def _check_text(text: Any, where: str, max_chars: int, fail, *, optional: bool = False) -> str:
    if optional and text is None:
        return ""
    if not isinstance(text, str):
        fail(where, "required" if text is None else f"expected a string, got {_type_name(text)}")
        return ""
    if not text.strip():
        if not optional:
            fail(where, "must not be empty")
    elif len(text) > max_chars:
        fail(where, f"{len(text)} characters; the limit is {max_chars}")
    elif "\x00" in text:
        fail(where, "contains a NUL character")
    elif found := LONE_SURROGATE.search(text):
        fail(where, f"Surrogate characters are not allowed: U+{ord(found.group()):04X}.")
    return text


def _printable(name: str) -> str:
    """A key of the input named in an error: a lone surrogate in it written as an escape, so the answer encodes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _shown(value: Any) -> str:
    return repr(_printable(value)[:40]) if isinstance(value, str) else _type_name(value)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
