"""The item import format (ARCHITECTURE.md), parsed and checked one record at a time.

Pure: no database. `parse_line` turns raw bytes into a dict or an error; `check_record` turns a dict into an
`ItemRecord` or a list of errors, each naming the field. The import service reads files through these, twice
(validate everything, then store everything), so that a bad line anywhere stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from annotation.languages import normalize_language_code

EXTERNAL_ID_RE = re.compile(r"[\w.:@/+-]{1,200}")
ALLOWED_KEYS = {"external_id", "prompt", "pivot", "responses", "metadata", "gold", "qualification"}
GOLD_KEYS = {"best", "wrong_language", "tolerance"}
MIN_RESPONSES, MAX_RESPONSES = 2, 8
RESPONSE_KEYS = {"text", "language", "model", "metadata", "detected_language", "detected_confidence"}
# A response's metadata is provenance (a generator and its settings), read with every response of an item: bounded,
# so that it stays small beside the texts. Measured against what a generation job writes (~300 bytes, 2 levels).
MAX_RESPONSE_METADATA_BYTES = 8 * 1024
MAX_RESPONSE_METADATA_DEPTH = 4
# A lone UTF-16 surrogate (a "\ud800" escape in the JSON) is not a character: the database cannot store it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ImportError_:
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ResponseRecord:
    text: str
    language: str
    model: str
    metadata: dict = field(default_factory=dict)
    # What a machine's language ID said (registry code; "" when not given or not measurable) and its probability.
    detected_language: str = ""
    detected_confidence: float | None = None

    def canonical(self) -> list:
        """The response as content_hash sees it: metadata and detection only when given, so the hashes of items
        imported before these keys existed stay the same (a re-import of them is "unchanged")."""
        values: list = [self.text, self.language, self.model]
        if self.metadata or self.detected_language:
            values.append({"metadata": self.metadata, "detected_language": self.detected_language,
                           "detected_confidence": self.detected_confidence})
        return values


@dataclass(frozen=True)
class ItemRecord:
    external_id: str
    prompt_text: str
    prompt_language: str
    pivot_text: str
    pivot_language: str | None
    responses: tuple[ResponseRecord, ...]
    metadata: dict = field(default_factory=dict)
    # "task", "gold" or "qualification" (models.Item.Kind); `gold` as stored: {best, wrong_language, tolerance}.
    kind: str = "task"
    gold: dict = field(default_factory=dict)

    @property
    def response_language(self) -> str:
        return self.responses[0].language

    def content_hash(self) -> str:
        return content_hash(self)


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int = 20_000
    max_response_chars: int = 20_000
    max_line_bytes: int = 1_000_000


def content_hash(record: ItemRecord) -> str:
    canonical = {
        "prompt": [record.prompt_text, record.prompt_language],
        "pivot": [record.pivot_text, record.pivot_language],
        # Metadata and detection count as content (docs/import.md): a re-import that changes only them is an update,
        # not "unchanged" with the old values silently kept; and annotators saw the detection (the hint and the
        # pre-set wrong-language flag), so an item they worked on may not change it under their judgments.
        "responses": [r.canonical() for r in record.responses],
        "metadata": record.metadata,
    }
    if record.kind != "task":
        # Only for gold and qualification items, so that the hashes of the items imported before gold existed stay
        # the same (a re-import of them is "unchanged").
        canonical["kind"], canonical["gold"] = record.kind, record.gold
    encoded = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def iter_jsonl(stream: IO[bytes], limits: Limits) -> Iterator[tuple[int, Any, ImportError_ | None]]:
    """Yield (line number, parsed value, error) for each non-blank line, reading one line at a time.

    A line longer than the limit is consumed in chunks and reported, never held whole in memory.
    """
    line_no = 0
    while True:
        raw = stream.readline(limits.max_line_bytes + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > limits.max_line_bytes and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the oversized line
                raw = stream.readline(1 << 20)
            yield line_no, None, ImportError_(line_no, "", f"line is longer than {limits.max_line_bytes} bytes")
            continue
        if not raw.strip():
            continue
        yield line_no, *parse_line(raw, line_no)


def parse_line(raw: bytes, line_no: int) -> tuple[Any, ImportError_ | None]:
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark, as some editors on Windows write it
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, ImportError_(line_no, "", f"not valid UTF-8 (byte {exc.start + 1} of the line)")
    try:
        return json.loads(text), None
    except RecursionError:
        return None, ImportError_(line_no, "", "JSON is nested too deeply")
    except json.JSONDecodeError as exc:
        return None, ImportError_(line_no, "", f"not valid JSON: {exc.msg} (column {exc.colno})")


def check_record(value: Any, line: int, limits: Limits) -> tuple[ItemRecord | None, list[ImportError_]]:
    errors: list[ImportError_] = []

    def fail(where: str, message: str) -> None:
        errors.append(ImportError_(line, where, message))

    if not isinstance(value, dict):
        fail("", f"expected a JSON object, got {_type_name(value)}")
        return None, errors
    for key in sorted(set(value) - ALLOWED_KEYS):
        fail(_printable(key), f"unknown field (allowed: {', '.join(sorted(ALLOWED_KEYS))})")

    prompt_text, prompt_lang = _check_text_block(value.get("prompt"), "prompt", limits.max_prompt_chars, fail)
    pivot_text, pivot_lang = "", None
    if value.get("pivot") is not None:
        pivot_text, pivot_lang = _check_text_block(value["pivot"], "pivot", limits.max_prompt_chars, fail)
    responses = _check_responses(value.get("responses"), limits, fail)
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        fail("metadata", f"expected an object, got {_type_name(metadata)}")
        metadata = {}
    elif surrogate := _nested_surrogate_message(metadata):
        fail("metadata", surrogate)
    kind, gold = _check_gold(value, len(responses), fail)
    external_id = value.get("external_id")
    if external_id is not None and (not isinstance(external_id, str) or not EXTERNAL_ID_RE.fullmatch(external_id)):
        fail("external_id", "expected 1–200 characters: letters, digits and . _ : @ / + -")
    if errors:
        return None, errors
    record = ItemRecord(
        external_id=external_id or "",
        prompt_text=prompt_text,
        prompt_language=prompt_lang,
        pivot_text=pivot_text,
        pivot_language=pivot_lang,
        responses=tuple(responses),
        metadata=metadata,
        kind=kind,
        gold=gold,
    )
    if not external_id:
        # Without an id, the content itself names the item, so re-importing the same file is still idempotent.
        record = ItemRecord(**{**record.__dict__, "external_id": f"sha256:{record.content_hash()[:32]}"})
    return record, []


def _check_text_block(block: Any, where: str, max_chars: int, fail) -> tuple[str, str]:
    if block is None:
        fail(where, "required")
        return "", ""
    if not isinstance(block, dict):
        fail(where, f"expected an object with text and language, got {_type_name(block)}")
        return "", ""
    text = _check_text(block.get("text"), f"{where}.text", max_chars, fail)
    language = _check_language(block.get("language"), f"{where}.language", fail)
    return text, language


def _check_responses(responses: Any, limits: Limits, fail) -> list[ResponseRecord]:
    if not isinstance(responses, list):
        fail("responses", f"expected a list of {MIN_RESPONSES}–{MAX_RESPONSES} responses, got {_type_name(responses)}")
        return []
    if not MIN_RESPONSES <= len(responses) <= MAX_RESPONSES:
        fail("responses", f"expected {MIN_RESPONSES}–{MAX_RESPONSES} responses, got {len(responses)}")
    records: list[ResponseRecord] = []
    seen: dict[str, int] = {}
    for index, response in enumerate(responses[:MAX_RESPONSES]):
        where = f"responses[{index}]"
        if not isinstance(response, dict):
            fail(where, f"expected an object, got {_type_name(response)}")
            continue
        for key in sorted(set(response) - RESPONSE_KEYS):
            fail(f"{where}.{_printable(key)}", f"unknown field (allowed: {', '.join(sorted(RESPONSE_KEYS))})")
        text = _check_text(response.get("text"), f"{where}.text", limits.max_response_chars, fail)
        language = _check_language(response.get("language"), f"{where}.language", fail)
        model = response.get("model", "") or ""
        if not isinstance(model, str) or len(model) > 200:
            fail(f"{where}.model", "expected a string of at most 200 characters")
            model = ""
        elif surrogate := _surrogate_message(model):
            fail(f"{where}.model", surrogate)
        key = text.strip()
        if key and key in seen:
            fail(f"{where}.text", f"same text as responses[{seen[key]}]: responses must be distinct")
        seen.setdefault(key, index)
        metadata = _check_response_metadata(response.get("metadata", {}), f"{where}.metadata", fail)
        detected, confidence = _check_detection(response, where, fail)
        records.append(ResponseRecord(text=text, language=language, model=model, metadata=metadata,
                                      detected_language=detected, detected_confidence=confidence))
    languages = {r.language for r in records if r.language}
    if len(languages) > 1:
        fail("responses", f"all responses of an item must be in one language, got {', '.join(sorted(languages))}")
    return records


def _check_response_metadata(metadata: Any, where: str, fail) -> dict:
    """A response's optional metadata: an object of at most MAX_RESPONSE_METADATA_DEPTH levels and
    MAX_RESPONSE_METADATA_BYTES as compact UTF-8 JSON, with no lone surrogate and no NaN or Infinity."""
    if not isinstance(metadata, dict):
        fail(where, f"expected an object, got {_type_name(metadata)}")
        return {}
    if _depth(metadata) > MAX_RESPONSE_METADATA_DEPTH:
        fail(where, f"nested too deeply: at most {MAX_RESPONSE_METADATA_DEPTH} levels of objects and lists")
        return {}
    if surrogate := _nested_surrogate_message(metadata):
        fail(where, surrogate)
        return {}
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except ValueError:
        fail(where, "holds NaN or Infinity, which JSON has no value for (the database refuses them): write null "
                    "or a string")
        return {}
    if len(encoded) > MAX_RESPONSE_METADATA_BYTES:
        fail(where, f"{len(encoded)} bytes as JSON; the limit is {MAX_RESPONSE_METADATA_BYTES} (8 KiB): keep the "
                    "generator and its settings here, not texts")
        return {}
    return metadata


def _depth(value: Any) -> int:
    """Levels of nested objects and lists ({"a": 1} is 1, {"a": [1]} is 2); iterative, for deep values."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _check_detection(response: dict, where: str, fail) -> tuple[str, float | None]:
    """(detected language as a registry code or "", confidence or None) of a response: both optional, null allowed,
    the confidence only beside a language. The import stores them as given and never detects languages itself."""
    code = response.get("detected_language")
    detected = ""
    if code is not None:
        if isinstance(code, str) and code:
            detected = _check_language(code, f"{where}.detected_language", fail)
        else:
            fail(f"{where}.detected_language", f"expected a language code (BCP-47 or FLORES-200), or null when the "
                                               f"language was not measurable; got {_type_name(code)}")
    confidence = response.get("detected_confidence")
    if confidence is None:
        return detected, None
    field_name = f"{where}.detected_confidence"
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        fail(field_name, f"expected a number from 0 to 1, or null; got {_type_name(confidence)}")
    elif not 0 <= confidence <= 1:  # also false for NaN and Infinity, which Python's JSON parser accepts
        fail(field_name, f"expected a number from 0 to 1 (the detector's probability), got {str(confidence)[:40]}")
    elif code is None:
        fail(field_name, "given without detected_language: a confidence belongs to a detected language; give "
                         "detected_language too, or leave detected_confidence out")
    else:
        return detected, float(confidence)
    return detected, None


def _check_gold(value: dict, n_responses: int, fail) -> tuple[str, dict]:
    """The optional `gold` object and `qualification` flag (docs/import.md): (kind, gold as stored).

    Responses are named by their index in `responses` (0 is the first), as the errors of this format name them:
    a response has no identifier of its own in the format, and its text or model need not be unique.
    """
    qualification = value.get("qualification", False)
    if not isinstance(qualification, bool):
        fail("qualification", f"expected true or false, got {_type_name(qualification)}")
        qualification = False
    gold = value.get("gold")
    if gold is None:
        if qualification:
            fail("gold", "required for a qualification item: the answer the annotator's ranking is checked against")
        return "task", {}
    if not isinstance(gold, dict):
        fail("gold", f"expected an object with best, wrong_language and tolerance, got {_type_name(gold)}")
        return "task", {}
    for key in sorted(set(gold) - GOLD_KEYS):
        fail(f"gold.{_printable(key)}", f"unknown field (allowed: {', '.join(sorted(GOLD_KEYS))})")
    best = _check_positions(gold.get("best", []), "gold.best", n_responses, fail)
    wrong = _check_positions(gold.get("wrong_language", []), "gold.wrong_language", n_responses, fail)
    if _empty(gold.get("best")) and _empty(gold.get("wrong_language")):
        fail("gold", "give best (the index or indices of the expected best response) or wrong_language (indices "
                     "of responses that must be flagged wrong_language), or both")
    elif set(best) & set(wrong):
        both = ", ".join(str(index) for index in sorted(set(best) & set(wrong)))
        fail("gold", f"response(s) {both} cannot be both the expected best and in the wrong language")
    tolerance = gold.get("tolerance", 0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= max(n_responses - 2, 0):
        fail("gold.tolerance", f"expected a whole number from 0 to {max(n_responses - 2, 0)} (how many responses may "
                               "be ranked above the expected best one)")
        tolerance = 0
    return ("qualification" if qualification else "gold"), {"best": best, "wrong_language": wrong,
                                                           "tolerance": tolerance}


def _empty(positions: Any) -> bool:
    # 0 is an index (the first response), not "nothing".
    return positions is None or positions == []


def _check_positions(positions: Any, where: str, n_responses: int, fail) -> list[int]:
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]  # one index written without its list
    if not isinstance(positions, list):
        fail(where, f"expected a list of response indices (0 is the first response), got {_type_name(positions)}")
        return []
    clean: list[int] = []
    for position in positions:
        if isinstance(position, bool) or not isinstance(position, int):
            fail(where, f"expected response indices (whole numbers), got {_type_name(position)}")
        elif not 0 <= position < n_responses:
            fail(where, f"the item has no response {position}: it has {n_responses} responses, indices 0 to "
                        f"{n_responses - 1}")
        elif position not in clean:
            clean.append(position)
    return sorted(clean)


def _check_text(text: Any, where: str, max_chars: int, fail) -> str:
    if not isinstance(text, str):
        fail(where, "required" if text is None else f"expected a string, got {_type_name(text)}")
        return ""
    if not text.strip():
        fail(where, "must not be empty")
    elif len(text) > max_chars:
        fail(where, f"{len(text)} characters; the limit is {max_chars}")
    elif "\x00" in text:
        fail(where, "contains a NUL character")
    elif surrogate := _surrogate_message(text):
        fail(where, surrogate)
    return text


def _surrogate_message(text: str) -> str:
    """DRF's wording for the same problem in an API field, or "" when the text has no lone surrogate."""
    found = LONE_SURROGATE.search(text)
    return f"Surrogate characters are not allowed: U+{ord(found.group()):04X}." if found else ""


def _printable(name: str) -> str:
    """A key of the input named in an error: a lone surrogate in it written as an escape, so the answer encodes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _nested_surrogate_message(value: Any) -> str:
    """_surrogate_message of the first string (key or value) in a parsed JSON value; iterative, for deep values."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if message := _surrogate_message(node):
                return message
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return ""


def _check_language(code: Any, where: str, fail) -> str:
    if not isinstance(code, str) or not code:
        fail(where, "required: a BCP-47 or FLORES-200 language code")
        return ""
    canonical = normalize_language_code(code)
    if canonical is None:
        fail(where, f"unknown language {code[:40]!r}; see GET /api/v1/languages/ for the codes")
        return ""
    return canonical


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
