"""Item import: all or nothing, idempotent by external_id, streaming.

Two passes over a seekable source: the first validates every line and collects every error without holding the
file in memory (only the external ids, to catch duplicates); the second stores in batches inside one transaction.
Validating outside the transaction keeps SQLite's write lock free while a large file is checked, so annotators
keep working during an import; only the short store pass takes the lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from annotation.item_format import ImportError_, ItemRecord, Limits, check_record, iter_jsonl
from annotation.models import Campaign, Item, Response
from crossfeed.errors import InvalidInput

BATCH_SIZE = 1000


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def import_limits() -> Limits:
    conf = settings.CROSSFEED
    return Limits(
        max_prompt_chars=conf["MAX_PROMPT_CHARS"],
        max_response_chars=conf["MAX_RESPONSE_CHARS"],
        max_line_bytes=conf["MAX_IMPORT_LINE_BYTES"],
    )


def items_import(*, campaign: Campaign, source: IO[bytes] | list[Any], progress=None) -> ImportResult:
    """Import items from a binary JSONL stream (seekable) or from already-parsed JSON values.

    Raises InvalidInput with `errors` [{line, field, message}] and stores nothing when any line is bad.
    `progress`, if given, is called with the number of records stored so far.
    """
    if campaign.status == Campaign.Status.CLOSED:
        raise InvalidInput(f"campaign {campaign.name!r} is closed: reopen it before importing", field="campaign")
    limits = import_limits()
    errors, total = _validate(campaign, _records(source, limits))
    if errors:
        shown = errors[: settings.CROSSFEED["MAX_IMPORT_ERRORS"]]
        more = f" (first {len(shown)} shown)" if len(shown) < len(errors) else ""
        raise InvalidInput(
            f"{len(errors)} problem(s) in the import{more}; nothing was stored",
            errors=[error.as_dict() for error in shown],
        )
    if total == 0:
        raise InvalidInput("the import holds no items", errors=[{"line": 0, "field": "", "message": "empty file"}])
    if hasattr(source, "seek"):
        source.seek(0)
    return _store(campaign, _records(source, limits), progress)


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


def _validate(campaign: Campaign, records: Iterator) -> tuple[list[ImportError_], int]:
    errors: list[ImportError_] = []
    first_line: dict[str, int] = {}
    batch: list[tuple[int, ItemRecord]] = []
    total = 0
    for line, record, problems in records:
        total += 1
        errors.extend(problems)
        if record is None:
            continue
        if record.external_id in first_line:
            errors.append(
                ImportError_(line, "external_id", f"{record.external_id!r} already used on line "
                             f"{first_line[record.external_id]}")
            )
            continue
        first_line[record.external_id] = line
        batch.append((line, record))
        if len(batch) >= BATCH_SIZE:
            errors.extend(_check_against_stored(campaign, batch))
            batch = []
    errors.extend(_check_against_stored(campaign, batch))
    errors.sort(key=lambda error: error.line)
    return errors, total


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
    rows = Item.objects.filter(campaign=campaign, external_id__in=external_ids).only(
        "id", "external_id", "content_hash", "judgment_count", "lease_count"
    )
    return {item.external_id: item for item in rows}


@transaction.atomic
def _store(campaign: Campaign, records: Iterator, progress) -> ImportResult:
    created = updated = unchanged = 0
    batch: list[ItemRecord] = []
    for _line, record, _problems in records:
        batch.append(record)
        if len(batch) >= BATCH_SIZE:
            counts = _store_batch(campaign, batch)
            created, updated, unchanged = created + counts[0], updated + counts[1], unchanged + counts[2]
            batch = []
            if progress:
                progress(created + updated + unchanged)
    counts = _store_batch(campaign, batch)
    if progress:
        progress(created + updated + unchanged + sum(counts))
    return ImportResult(created + counts[0], updated + counts[1], unchanged + counts[2])


def _store_batch(campaign: Campaign, batch: list[ItemRecord]) -> tuple[int, int, int]:
    if not batch:
        return 0, 0, 0
    stored = _stored_items(campaign, [record.external_id for record in batch])
    new_records, changed = [], []
    for record in batch:
        item = stored.get(record.external_id)
        if item is None:
            new_records.append(record)
        elif item.content_hash != record.content_hash():
            if item.judgment_count or item.lease_count:
                # Someone leased it between the two passes: refuse the whole import rather than change it.
                raise InvalidInput(
                    f"item {record.external_id!r} received a lease or judgment during the import; "
                    "nothing was stored, run the import again",
                    field="external_id",
                )
            changed.append((item, record))
    items = Item.objects.bulk_create([_item_from(campaign, record) for record in new_records])
    responses = [resp for item, record in zip(items, new_records, strict=True) for resp in _responses(item, record)]
    for item, record in changed:
        for name, value in _item_fields(campaign, record).items():
            setattr(item, name, value)
        item.save(update_fields=list(_item_fields(campaign, record)))
        item.responses.all().delete()
        responses.extend(_responses(item, record))
    Response.objects.bulk_create(responses)
    return len(new_records), len(changed), len(batch) - len(new_records) - len(changed)


def _item_fields(campaign: Campaign, record: ItemRecord) -> dict[str, Any]:
    return {
        "prompt_text": record.prompt_text,
        "prompt_language_id": record.prompt_language,
        "pivot_text": record.pivot_text,
        "pivot_language_id": record.pivot_language,
        "response_language_id": record.response_language,
        "metadata": record.metadata,
        "content_hash": record.content_hash(),
    }


def _item_from(campaign: Campaign, record: ItemRecord) -> Item:
    return Item(campaign=campaign, external_id=record.external_id, target=campaign.overlap,
                **_item_fields(campaign, record))


def _responses(item: Item, record: ItemRecord) -> list[Response]:
    return [
        Response(item=item, position=index, text=resp.text, language_id=resp.language, model_name=resp.model)
        for index, resp in enumerate(record.responses)
    ]
