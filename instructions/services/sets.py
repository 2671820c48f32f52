"""Instruction set import: all or nothing, and never a long write lock (docs/instruction-sets.md).

As the item import (annotation/services/imports.py), in three steps:

1. **Check** the whole file once, outside any transaction: every record, one format, ids unique. Any problem: the
   first MAX_IMPORT_ERRORS are raised with their count, and nothing is stored.
2. **Stage**: the set is created `importing` and its rows written in batches of BATCH_SIZE, one short transaction
   each, so annotators' writes get the SQLite write lock between them. Nothing reads an `importing` set.
3. **Publish**: one tiny transaction marks the set `ready`.

A failure in step 2 or 3 deletes the set and its rows. A process that dies mid-import leaves an `importing` set
that stops writing its heartbeat; the next import (or `instruction_sets_cleanup`) deletes it once it has been quiet
for CROSSFEED["IMPORT_STALE_SECONDS"], which frees its name again.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from annotation.languages import normalize_language_code
from annotation.services.imports import ImportRefused
from crossfeed.errors import Conflict, InvalidInput
from instructions.formats import LONE_SURROGATE, CheckedFile, InstructionRecord, Limits, check_file, iter_records
from instructions.models import InstructionRow, InstructionSet

log = logging.getLogger(__name__)

# Rows per staging transaction. Measured on SQLite (Alpaca-sized rows of ~420 bytes, a busy two-core machine): a
# batch of 1,000 holds the write lock ~70 ms (p50; 0.25 s at worst); 52,000 rows import in 6-8 s in all.
BATCH_SIZE = 1000
MAX_NAME_CHARS = 200


def instruction_set_limits() -> Limits:
    conf = settings.CROSSFEED
    return Limits(max_prompt_chars=conf["MAX_PROMPT_CHARS"], max_response_chars=conf["MAX_RESPONSE_CHARS"],
                  max_line_bytes=conf["MAX_IMPORT_LINE_BYTES"], max_errors=conf["MAX_IMPORT_ERRORS"])


def instruction_set_import(*, name: str, source: IO[bytes], language: str = "en", created_by=None,
                           source_name: str = "", notes: str = "") -> InstructionSet:
    """Import an Alpaca (JSON array or JSONL) or TRL messages (JSONL) file from a seekable binary stream.

    Raises ImportRefused (an InvalidInput: errors [{line, field, message}], error_count) and stores nothing when any
    record is bad; InvalidInput for a bad name or language, or a name in use.
    """
    name = _check_name(name)
    language_code = _check_language(language)
    instruction_sets_cleanup()
    _refuse_name_in_use(name)
    start = source.tell()
    sha256 = _sha256(source)
    source.seek(start)
    limits = instruction_set_limits()
    checked = check_file(source, limits)
    _refuse_problems(checked, id_prefix=_id_prefix(name))
    source.seek(start)
    try:
        with transaction.atomic():
            instruction_set = InstructionSet.objects.create(
                name=name, source_name=source_name[:300], format=checked.format, language_id=language_code,
                sha256=sha256, notes=notes,
                created_by=created_by if created_by is not None and created_by.is_authenticated else None,
            )
    except IntegrityError:
        raise InvalidInput(f"an instruction set named {name!r} was created meanwhile; choose another name",
                           field="name") from None
    try:
        rows = _stage(instruction_set, iter_records(source, limits), language_code)
        _publish(instruction_set, rows)
    except BaseException:
        _discard(instruction_set.pk)
        raise
    instruction_set.refresh_from_db()
    return instruction_set


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("give the instruction set a name", field="name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"the name has {len(name)} characters; the limit is {MAX_NAME_CHARS}", field="name")
    if LONE_SURROGATE.search(name) or "\x00" in name:
        raise InvalidInput("the name holds a character that is not text (a lone surrogate or NUL)", field="name")
    return name


def _check_language(code: str) -> str:
    canonical = normalize_language_code(code) if isinstance(code, str) and code else None
    if canonical is None:
        raise InvalidInput(f"unknown language {str(code)[:40]!r}; see GET /api/v1/languages/ for the codes",
                           field="language")
    return canonical


def _refuse_name_in_use(name: str) -> None:
    existing = InstructionSet.objects.filter(name=name).only("status", "heartbeat_at").first()
    if existing is None:
        return
    if existing.status == InstructionSet.Status.IMPORTING:
        raise InvalidInput(f"an instruction set named {name!r} is being imported now; choose another name, or wait: "
                           "if that import has died, its name is free again "
                           f"{settings.CROSSFEED['IMPORT_STALE_SECONDS'] // 60} minutes after its last write",
                           field="name")
    raise InvalidInput(f"an instruction set named {name!r} exists already; choose another name", field="name")


def _refuse_problems(checked: CheckedFile, *, id_prefix: str) -> None:
    if checked.error_count:
        more = f" (first {len(checked.errors)} shown)" if len(checked.errors) < checked.error_count else ""
        raise ImportRefused(f"{checked.error_count} problem(s) in the file{more}; nothing was stored",
                            errors=[error.as_dict() for error in checked.errors], error_count=checked.error_count)
    # A row without an id is named <set>-<index>: an id given to another row may not take that name.
    taken = sorted({f"{id_prefix}-{index}" for index in checked.unnamed} & checked.given_ids)
    if taken:
        errors = [{"line": 0, "field": "id", "message": f"{external_id!r} is given to one row and is also the name a "
                                                        "row without an id gets: give every row an id, or none"}
                  for external_id in taken[:100]]
        raise ImportRefused(f"{len(taken)} id(s) clash with generated ids; nothing was stored", errors=errors,
                            error_count=len(taken))


def _id_prefix(name: str) -> str:
    return slugify(name, allow_unicode=True)[:100] or "set"


def _sha256(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _stage(instruction_set: InstructionSet, records, language_code: str) -> int:
    prefix = _id_prefix(instruction_set.name)
    batch: list[InstructionRow] = []
    index = 0
    for _line, record, _errors in records:
        batch.append(_row(instruction_set, record, index, prefix, language_code))
        index += 1
        if len(batch) >= BATCH_SIZE:
            _write_batch(instruction_set, batch)
            batch = []
    _write_batch(instruction_set, batch)
    return index


def _row(instruction_set: InstructionSet, record: InstructionRecord, index: int, prefix: str,
         language_code: str) -> InstructionRow:
    return InstructionRow(instruction_set=instruction_set, index=index,
                          external_id=record.external_id or f"{prefix}-{index}", language_id=language_code,
                          instruction=record.instruction, input=record.input, output=record.output,
                          messages=record.messages, metadata=record.metadata)


def _write_batch(instruction_set: InstructionSet, batch: list[InstructionRow]) -> None:
    with transaction.atomic():
        if batch:
            InstructionRow.objects.bulk_create(batch)
        alive = InstructionSet.objects.filter(pk=instruction_set.pk, status=InstructionSet.Status.IMPORTING).update(
            heartbeat_at=timezone.now())
        if not alive:
            raise Conflict(f"the import of {instruction_set.name!r} was taken for dead by the clean-up while it ran; "
                           "run it again")


def _publish(instruction_set: InstructionSet, rows: int) -> None:
    with transaction.atomic():
        done = InstructionSet.objects.filter(pk=instruction_set.pk, status=InstructionSet.Status.IMPORTING).update(
            status=InstructionSet.Status.READY, rows=rows, heartbeat_at=timezone.now())
        if not done:
            raise Conflict(f"the import of {instruction_set.name!r} was taken for dead by the clean-up while it ran; "
                           "run it again")


def _discard(set_id: int) -> None:
    """Delete a set and its rows in short transactions, as they were written."""
    while ids := list(InstructionRow.objects.filter(instruction_set_id=set_id).values_list("id", flat=True)[
                      :BATCH_SIZE]):
        with transaction.atomic():
            InstructionRow.objects.filter(id__in=ids).delete()
    InstructionSet.objects.filter(pk=set_id).delete()


def instruction_sets_cleanup(*, now: datetime | None = None) -> int:
    """Delete the sets whose import stopped writing (a dead process); returns how many."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CROSSFEED["IMPORT_STALE_SECONDS"])
    dead = list(InstructionSet.objects.filter(status=InstructionSet.Status.IMPORTING, heartbeat_at__lt=stale)
                .values_list("pk", flat=True))
    for set_id in dead:
        _discard(set_id)
        log.info("deleted instruction set %s: its import stopped writing", set_id)
    return len(dead)
