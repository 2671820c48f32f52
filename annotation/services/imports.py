"""Item import: all or nothing, idempotent by external_id, streaming, and never a long write lock.

A 150,000-item import stored in one transaction held SQLite's write lock for 65–100 s: annotators got 503s and the
task worker died waiting. So the import runs in three steps (docs/import.md):

1. **Validate**: read the whole source once and check every line, counting every problem and keeping the first
   MAX_IMPORT_ERRORS for the answer. Reads only, outside any transaction: the write lock stays free.
2. **Stage**: read the source again and write the new rows in batches, one short transaction per batch. Each row
   carries `staged_by` (this import's ItemImport): `Item.objects`, next() and every hand-written query leave such
   rows out, so nothing of the import is visible or leasable yet, and other writers get the lock between batches.
3. **Publish**: one short transaction replaces the items whose content changed and clears `staged_by` on every row
   the import staged: the whole import becomes visible at once.

A failure in step 2 or 3 deletes what was staged. A process that dies (killed, out of memory, a gunicorn timeout)
cannot: its rows stay staged, invisible and harmless (they do not count towards the unique external_id either),
until `imports_cleanup` finds the import dead (its process is gone, or it has not written for
IMPORT_STALE_SECONDS) and deletes them. The clean-up runs at the start of every import and as
`manage.py cleanup_imports`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.gold import GOLD_TARGET, WRONG_LANGUAGE
from annotation.item_format import ImportError_, ItemRecord, Limits, check_record, iter_jsonl
from annotation.models import Campaign, Item, ItemImport, JobStatus, Response
from annotation.services.quality import qualification_pairs_refresh
from crossfeed.errors import Conflict, InvalidInput
from crossfeed.jobs.lifecycle import worker_gone

log = logging.getLogger(__name__)

# Items per staging transaction. Measured on SQLite (items of ~900 bytes with 4 responses, a busy two-core machine):
# a batch holds the write lock ~50 ms (p50; 0.2 s at worst), so an annotator's write waits about that long at most.
BATCH_SIZE = 1000
# An import whose rows are all unchanged writes nothing; it still says it is alive this often.
HEARTBEAT_SECONDS = 30


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


class ImportRefused(InvalidInput):
    """Problems in the file: every one counted, the first MAX_IMPORT_ERRORS (by line) listed, so that the answer
    has a bounded size whatever the file holds (a file of a million bad lines once made a 115 MB error body)."""

    def __init__(self, message: str, *, errors: list[dict], error_count: int) -> None:
        super().__init__(message, errors=errors)
        self.error_count = error_count

    @property
    def truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def as_dict(self) -> dict:
        return {"detail": self.message, "errors": self.errors, "error_count": self.error_count,
                "truncated": self.truncated}


class ImportAbandoned(Conflict):
    """The import's record is no longer `running`: the clean-up took it for dead (it wrote nothing for
    IMPORT_STALE_SECONDS, or its record was deleted). Nothing of it may be published: the client runs it again."""


def import_limits() -> Limits:
    conf = settings.CROSSFEED
    return Limits(
        max_prompt_chars=conf["MAX_PROMPT_CHARS"],
        max_response_chars=conf["MAX_RESPONSE_CHARS"],
        max_line_bytes=conf["MAX_IMPORT_LINE_BYTES"],
    )


def items_import(
    *,
    campaign: Campaign,
    source: IO[bytes] | list[Any],
    progress=None,
    created_by=None,
    source_name: str = "",
) -> ImportResult:
    """Import items from a binary JSONL stream (seekable) or from already-parsed JSON values.

    Raises ImportRefused (an InvalidInput) with `errors` [{line, field, message}] and `error_count`, and stores
    nothing, when any line is bad. `progress`, if given, is called with the number of records written so far.
    """
    if campaign.status == Campaign.Status.CLOSED:
        raise InvalidInput(f"campaign {campaign.name!r} is closed: reopen it before importing", field="campaign")
    if campaign.task == Campaign.Task.POST_EDIT:
        # Its items are machine translations, one response per field, each tied to a Translation; imported items
        # would have nothing to write their edits to.
        raise InvalidInput(f"campaign {campaign.name!r} is a post-editing campaign: its items come from a translation "
                           "job (POST /api/v1/instruction-sets/{id}/translations/ with post_edit), not from an "
                           "import; import items to rank into a ranking campaign", field="campaign")
    imports_cleanup()
    limits = import_limits()
    problems, total = _validate(campaign, _records(source, limits))
    if problems.count:
        shown = problems.first()
        more = f" (first {len(shown)} shown)" if len(shown) < problems.count else ""
        raise ImportRefused(f"{problems.count} problem(s) in the import{more}; nothing was stored",
                            errors=[error.as_dict() for error in shown], error_count=problems.count)
    if total == 0:
        raise ImportRefused("the import holds no items", errors=[{"line": 0, "field": "", "message": "empty file"}],
                            error_count=1)
    if hasattr(source, "seek"):
        source.seek(0)
    record = ItemImport.objects.create(
        campaign=campaign, owner=_owner(), source=source_name[:300],
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    try:
        staged = _stage(record, campaign, _records(source, limits), progress)
        return _publish(record, campaign, staged)
    except BaseException as exc:
        _discard(record.pk, f"{type(exc).__name__}: {exc}")
        raise


# --- step 1: validate ------------------------------------------------------------------------------------------


class _Problems:
    """Counts every problem and keeps the first `keep` by line, in bounded memory: errors mostly arrive in line
    order, but the checks against stored items report a whole batch at its end."""

    def __init__(self, keep: int) -> None:
        self.keep = max(keep, 1)
        self.count = 0
        self.kept: list[ImportError_] = []

    def add(self, errors: Iterable[ImportError_]) -> None:
        for error in errors:
            self.count += 1
            self.kept.append(error)
        if len(self.kept) > 4 * self.keep:
            self._trim()

    def _trim(self) -> None:
        # A dropped error's line is above the keep-th smallest seen so far, so it can never be among the first.
        self.kept.sort(key=lambda error: error.line)
        del self.kept[self.keep:]

    def first(self) -> list[ImportError_]:
        self._trim()
        return self.kept


def _records(source: IO[bytes] | list[Any], limits: Limits) -> Iterator[tuple[int, ItemRecord | None, list]]:
    if isinstance(source, list):
        parsed: Iterable[tuple[int, Any, ImportError_ | None]] = (
            (index + 1, value, None) for index, value in enumerate(source)
        )
    else:
        parsed = iter_jsonl(source, limits)
    for line, value, error in parsed:
        if error is not None:
            yield line, None, [error]
            continue
        record, problems = check_record(value, line, limits)
        yield line, record, problems


def _validate(campaign: Campaign, records: Iterator) -> tuple[_Problems, int]:
    problems = _Problems(settings.CROSSFEED["MAX_IMPORT_ERRORS"])
    first_line: dict[str, int] = {}
    batch: list[tuple[int, ItemRecord]] = []
    total = 0
    for line, record, errors in records:
        total += 1
        problems.add(errors)
        if record is None:
            continue
        if record.gold.get("wrong_language") and WRONG_LANGUAGE not in campaign.flag_vocabulary:
            problems.add([ImportError_(line, "gold.wrong_language", f"campaign {campaign.name!r} has no "
                                       f"{WRONG_LANGUAGE!r} flag for annotators to tick; add it to the campaign's "
                                       "flags or leave wrong_language out")])
        if record.external_id in first_line:
            problems.add([ImportError_(line, "external_id", f"{record.external_id!r} already used on line "
                                                            f"{first_line[record.external_id]}")])
            continue
        first_line[record.external_id] = line
        batch.append((line, record))
        if len(batch) >= BATCH_SIZE:
            problems.add(_check_against_stored(campaign, batch))
            batch = []
    problems.add(_check_against_stored(campaign, batch))
    return problems, total


def _check_against_stored(campaign: Campaign, batch: list[tuple[int, ItemRecord]]) -> list[ImportError_]:
    """An item that annotators already worked on may not change: their rankings were of the old text."""
    if not batch:
        return []
    stored = _stored_items(campaign, [record.external_id for _, record in batch])
    errors = []
    for line, record in batch:
        item = stored.get(record.external_id)
        if item and item.content_hash != record.content_hash() and (item.judgment_count or item.lease_count):
            errors.append(
                ImportError_(
                    line,
                    "external_id",
                    f"item {record.external_id!r} already has judgments or leases and its content differs; "
                    "give the changed item a new external_id",
                )
            )
    return errors


def _stored_items(campaign: Campaign, external_ids: list[str]) -> dict[str, Item]:
    """The campaign's visible items with these ids (what other imports staged does not count)."""
    rows = Item.objects.filter(campaign=campaign, external_id__in=external_ids).only(
        "id", "external_id", "content_hash", "judgment_count", "lease_count"
    )
    return {item.external_id: item for item in rows}


# --- step 2: stage ---------------------------------------------------------------------------------------------


@dataclass
class _Staged:
    rows: int = 0
    unchanged: int = 0
    # (visible item id, its content hash when staged): items the publish step replaces with their staged twin.
    replaced: list[tuple[int, str]] = field(default_factory=list)
    beat_at: datetime = field(default_factory=timezone.now)


def _stage(record: ItemImport, campaign: Campaign, records: Iterator, progress) -> _Staged:
    staged = _Staged()
    batch: list[ItemRecord] = []
    for _line, item_record, _problems in records:
        batch.append(item_record)
        if len(batch) >= BATCH_SIZE:
            _stage_batch(record, campaign, batch, staged)
            batch = []
            if progress:
                progress(staged.rows + staged.unchanged)
    _stage_batch(record, campaign, batch, staged)
    if progress:
        progress(staged.rows + staged.unchanged)
    return staged


def _stage_batch(record: ItemImport, campaign: Campaign, batch: list[ItemRecord], staged: _Staged) -> None:
    if not batch:
        return
    # Read before the write transaction: on SQLite every transaction holds the write lock from its BEGIN.
    stored = _stored_items(campaign, [item_record.external_id for item_record in batch])
    new_records = []
    for item_record in batch:
        item = stored.get(item_record.external_id)
        if item is None:
            new_records.append(item_record)
        elif item.content_hash == item_record.content_hash():
            staged.unchanged += 1
        else:
            _refuse_if_worked_on(item_record.external_id, item.judgment_count, item.lease_count)
            new_records.append(item_record)
            staged.replaced.append((item.id, item.content_hash))
    if not new_records and timezone.now() - staged.beat_at < timedelta(seconds=HEARTBEAT_SECONDS):
        return
    # Every value is adapted here, outside the transaction. Django's bulk_create compiles its INSERTs inside it,
    # and that Python work was ~85 % of the time the write lock was held (0.3–0.5 s per 1,000 items, measured).
    item_rows = [_item_row(campaign, item_record, record.pk) for item_record in new_records]
    response_rows = [_response_rows(item_record) for item_record in new_records]
    with transaction.atomic():
        item_ids = _insert_items(item_rows)
        _insert_responses([(item_id, *row) for item_id, rows in zip(item_ids, response_rows, strict=True)
                           for row in rows])
        staged.rows += len(item_ids)
        _beat(record, staged)


def _beat(record: ItemImport, staged: _Staged) -> None:
    """Say the import is alive (conditional on its status: the clean-up may have taken it for dead)."""
    staged.beat_at = timezone.now()
    alive = ItemImport.objects.filter(pk=record.pk, status=JobStatus.RUNNING).update(
        heartbeat_at=staged.beat_at, staged=staged.rows
    )
    if not alive:
        raise ImportAbandoned(f"import {record.pk} was marked failed by the clean-up while it ran; run it again")


def _refuse_if_worked_on(external_id: str, judgment_count: int, lease_count: int) -> None:
    if judgment_count or lease_count:
        # Someone leased it after the validation pass: refuse the whole import rather than change it.
        raise InvalidInput(
            f"item {external_id!r} received a lease or judgment during the import; nothing was stored, "
            "run the import again",
            field="external_id",
        )


# --- step 3: publish -------------------------------------------------------------------------------------------


def _publish(record: ItemImport, campaign: Campaign, staged: _Staged) -> ImportResult:
    result = ImportResult(staged.rows - len(staged.replaced), len(staged.replaced), staged.unchanged)
    try:
        with transaction.atomic():
            now = timezone.now()
            alive = ItemImport.objects.filter(pk=record.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.SUCCEEDED, finished_at=now, heartbeat_at=now, staged=staged.rows, **result.as_dict()
            )
            if not alive:
                raise ImportAbandoned(f"import {record.pk} was marked failed by the clean-up while it ran; "
                                      "run it again")
            for start in range(0, len(staged.replaced), BATCH_SIZE):
                _replace(staged.replaced[start:start + BATCH_SIZE])
            # The staged rows carry the k of the import's start. Read k again in the transaction: if an admin changed
            # it meanwhile, the rows follow. Otherwise the flip writes one column: it rewrites every row it shows
            # (0.9–1.5 s for 150,000 items on a busy two-core machine), the one longer hold of the import.
            overlap = Campaign.objects.filter(pk=campaign.pk).values_list("overlap", flat=True).first()
            if overlap != campaign.overlap:
                # Gold and qualification items keep their GOLD_TARGET: k is not theirs.
                Item.all_objects.filter(staged_by=record, kind=Item.Kind.TASK).update(target=overlap)
            started = time.monotonic()
            shown = Item.all_objects.filter(staged_by=record).update(staged_by=None)
            log.info("import %s: %d item(s) made visible in %.2f s", record.pk, shown, time.monotonic() - started)
            if shown != staged.rows:
                raise ImportAbandoned(f"import {record.pk} staged {staged.rows} item(s) but {shown} were left to "
                                      "publish; nothing was stored, run it again")
            qualification_pairs_refresh(campaign=campaign)
    except IntegrityError as exc:
        raise Conflict(
            f"another import into campaign {campaign.name!r} stored some of the same external_ids while this one "
            "ran; nothing was stored from this one. Run it again: items already stored count as unchanged",
            field="external_id",
        ) from exc
    return result


def _replace(replaced: list[tuple[int, str]]) -> None:
    """Delete the visible items whose staged twins replace them, if nobody started on them in the meantime."""
    current = {
        item_id: (content_hash, judgments, leases, external_id)
        for item_id, content_hash, judgments, leases, external_id in Item.objects.filter(
            id__in=[item_id for item_id, _ in replaced]
        ).values_list("id", "content_hash", "judgment_count", "lease_count", "external_id")
    }
    for item_id, seen_hash in replaced:
        if item_id in current:
            content_hash, judgments, leases, external_id = current[item_id]
            _refuse_if_worked_on(external_id, judgments, leases)
            if content_hash != seen_hash:
                raise Conflict(f"item {external_id!r} was changed by another import while this one ran; nothing "
                               "was stored, run the import again", field="external_id")
    Item.objects.filter(id__in=list(current)).delete()


# --- failure and clean-up ---------------------------------------------------------------------------------------


def _discard(import_id: int, reason: str) -> None:
    """Mark the import failed and delete what it staged. Its own failure (say, the database went away) is logged
    and left to imports_cleanup: the caller's exception is the one to report."""
    try:
        ItemImport.objects.filter(pk=import_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
        )
        _delete_staged(import_id)
    except Exception:
        log.exception("import %s failed and its staged items could not be deleted now; "
                      "`manage.py cleanup_imports` will delete them", import_id)


def _delete_staged(import_id: int) -> int:
    """Delete the import's staged rows in short transactions, like they were written; returns how many."""
    deleted = 0
    while True:
        ids = list(Item.all_objects.filter(staged_by_id=import_id).values_list("id", flat=True)[:BATCH_SIZE])
        if not ids:
            return deleted
        with transaction.atomic():
            Response.objects.filter(item_id__in=ids).delete()
            Item.all_objects.filter(id__in=ids).delete()
        deleted += len(ids)


def imports_cleanup(*, now: datetime | None = None) -> int:
    """Fail the imports whose process is gone, and delete what every failed import staged; returns how many
    imports had staged rows deleted. Cheap when there is nothing to do (two indexed reads)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CROSSFEED["IMPORT_STALE_SECONDS"])
    for import_id, owner, heartbeat_at in ItemImport.objects.filter(status=JobStatus.RUNNING).values_list(
        "id", "owner", "heartbeat_at"
    ):
        if worker_gone(owner):
            why, still = "its process ended before the import finished (killed or crashed)", Q()
        elif heartbeat_at < stale:
            why, still = "it wrote nothing for too long", Q(heartbeat_at__lt=stale)
        else:
            continue
        ItemImport.objects.filter(still, pk=import_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=f"{why}; what it staged was deleted", finished_at=now
        )
    pending = set(
        Item.all_objects.filter(staged_by__isnull=False).order_by().values_list("staged_by_id", flat=True).distinct()
    )
    dead = ItemImport.objects.filter(pk__in=pending).exclude(status=JobStatus.RUNNING).values_list("pk", flat=True)
    dead = list(dead)
    for import_id in dead:
        count = _delete_staged(import_id)
        log.info("deleted %d item(s) staged by failed import %s", count, import_id)
    return len(dead)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- rows: plain SQL, with values adapted before the write transaction ---------------------------------------

ITEM_COLUMNS = ["campaign", "external_id", "prompt_text", "prompt_language", "pivot_text", "pivot_language",
                "response_language", "metadata", "content_hash", "target", "judgment_count", "lease_count",
                "created_at", "staged_by", "kind", "gold"]
RESPONSE_COLUMNS = ["item", "position", "text", "language", "model_name", "metadata", "detected_language",
                    "detected_confidence"]


def _columns(model, names: list[str]) -> str:
    # From the models' _meta, as in annotation/sql.py: a renamed field fails loudly here. The statements below are
    # built from these names and placeholders only; every value is a query parameter (hence their noqa: S608).
    return ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in names)


def _item_row(campaign: Campaign, record: ItemRecord, import_id: int) -> tuple:
    return (campaign.pk, record.external_id, record.prompt_text, record.prompt_language, record.pivot_text,
            record.pivot_language, record.response_language, connection.ops.adapt_json_value(record.metadata, None),
            record.content_hash(), campaign.overlap if record.kind == Item.Kind.TASK else GOLD_TARGET, 0, 0,
            connection.ops.adapt_datetimefield_value(timezone.now()), import_id, record.kind,
            connection.ops.adapt_json_value(record.gold, None))


def _response_rows(record: ItemRecord) -> list[tuple]:
    # The detection is stored as the file gives it: an import never runs language ID itself (80–90 µs a response:
    # 150,000 items of 4 responses would take ~50 s more; docs/import.md). Generation jobs detect before importing.
    return [(index, resp.text, resp.language, resp.model, connection.ops.adapt_json_value(resp.metadata, None),
             resp.detected_language, resp.detected_confidence) for index, resp in enumerate(record.responses)]


def _insert_items(rows: list[tuple]) -> list[int]:
    """Insert the rows; their new ids in the same order (multi-row INSERT … RETURNING, as Django's bulk_create)."""
    table = connection.ops.quote_name(Item._meta.db_table)
    columns = _columns(Item, ITEM_COLUMNS)
    placeholder = "(" + ", ".join(["%s"] * len(ITEM_COLUMNS)) + ")"
    # SQLite's limit as Django states it (999); PostgreSQL states none, its protocol allows 65,535 parameters.
    per_statement = max((connection.features.max_query_params or 65_535) // len(ITEM_COLUMNS), 1)
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholder] * len(chunk))} "  # noqa: S608
                f"RETURNING {connection.ops.quote_name('id')}",
                [value for row in chunk for value in row],
            )
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _insert_responses(rows: list[tuple]) -> None:
    table = connection.ops.quote_name(Response._meta.db_table)
    placeholders = ", ".join(["%s"] * len(RESPONSE_COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({_columns(Response, RESPONSE_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
            rows,
        )
