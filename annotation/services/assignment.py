"""Leasing items to annotators: `next`, skip, release and the reclaiming of expired leases.

Atomicity: on SQLite every transaction is IMMEDIATE (settings), so lease_next runs alone among writers; on
PostgreSQL the candidate rows are locked with SKIP LOCKED, so concurrent annotators take different items instead
of queueing on the same one. On both, the lease is taken by a conditional UPDATE of the item's lease counter
whose row count says whether the item still had room, and the item's CHECK constraint backs it up.

Quality control (docs/campaigns.md) adds indexed reads to `next` (in sql.lease_state) and changes which items are
candidates: an annotator excluded by an admin gets nothing; a language pair they were excluded from by gold, or
whose qualification they have not passed, gives no items to rank; qualification items of the pairs still to
qualify for come first; and with probability `gold_rate` a gold item they have not judged takes the place of the
item to rank (only while there is one: an annotator who is done is not kept busy with checks).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation import sql
from annotation.models import Campaign, Item, Judgment, Lease, Skip
from annotation.selectors import annotator_languages, item_and_responses
from crossfeed.errors import Conflict, InvalidInput, NotFound

# PostgreSQL, when every open item is locked by others: candidates per round, and rounds, to wait on.
CANDIDATES = 8
ROUNDS = 4


def lease_next(*, campaign: Campaign, annotator: AbstractBaseUser, now: datetime | None = None,
               with_item: bool = False) -> Lease | None:
    """Lease the next item for this annotator, or return their live lease; None when nothing is left.

    `with_item`: the lease carries the item and its responses as `item_rows` (selectors.item_and_responses's
    answer), which PostgreSQL's common case reads in the statement that takes the lease."""
    if not campaign.accepts_judgments:
        raise Conflict(_("campaign %(name)r is %(status)s: no items are handed out")
                       % {"name": campaign.name, "status": campaign.get_status_display()})
    native, reading = annotator_languages(annotator)  # read before the transaction: SQLite locks at BEGIN
    if not native:
        raise InvalidInput(_("your annotator profile has no native language; ask an admin to add one"))
    now = now or timezone.now()
    expires_at = now + timedelta(minutes=campaign.lease_minutes)
    gold = bool(campaign.gold_rate) and random.random() < campaign.gold_rate  # noqa: S311 - a mix, not a secret
    if not gold and not campaign.qualification_pairs and connection.features.has_select_for_update_skip_locked:
        # PostgreSQL's common case in one statement, which needs no transaction around it (sql.lease_at_once): one
        # round trip where the transaction below takes five. Anything else (a live lease, an expired one, a gate)
        # makes it write nothing, and the transaction below does the work.
        taken = sql.lease_at_once(
            candidates=sql.candidate_ids(campaign_id=campaign.pk, annotator_id=annotator.pk, native=native,
                                         reading=reading, limit=1, lock=True, as_query=True),
            campaign_id=campaign.pk, annotator_id=annotator.pk, now=now, expires_at=expires_at, with_item=with_item)
        if taken is not None:
            lease = Lease(id=taken[0], item_id=taken[1], annotator=annotator, created_at=now, expires_at=expires_at)
            if with_item:
                lease.item_rows = item_and_responses(taken[1], found=taken[2])
            return lease
    with transaction.atomic():
        lease = _lease(campaign, annotator, native, reading, now, expires_at, gold)
    if with_item and lease is not None:
        lease.item_rows = item_and_responses(lease.item_id)
    return lease


def _lease(campaign: Campaign, annotator, native: list[str], reading: list[str], now: datetime,
           expires_at: datetime, gold: bool) -> Lease | None:
    # One read for the expired-lease probe, the live lease and the gates: on PostgreSQL each statement is a round
    # trip, and these three were a quarter of a `next` (docs/benchmarks.md).
    expired, current, gate_rows = sql.lease_state(campaign_id=campaign.pk, annotator_id=annotator.pk, now=now)
    if expired:
        # Every expired lease, not only this campaign's: the index on expires_at makes an empty check one probe.
        leases_reclaim(now=now)
    if current is not None:
        # Coming back to the page keeps the same item and gives it a fresh lease period.
        sql.extend_lease(current[0], expires_at)
        return Lease(id=current[0], item_id=current[1], annotator=annotator, created_at=now, expires_at=expires_at)
    gates = _gates(campaign, gate_rows)
    if gates.excluded:
        return None
    for item_id in _picks(campaign, annotator, native, reading, gates, gold, (now, expires_at)):
        if isinstance(item_id, _Leased):  # PostgreSQL found, placed and leased it in one statement
            return Lease(id=item_id.lease_id, item_id=item_id.item_id, annotator=annotator, created_at=now,
                         expires_at=expires_at)
        if sql.take_lease_place(item_id):
            lease_id = sql.insert_lease(item_id=item_id, annotator_id=annotator.pk, now=now, expires_at=expires_at)
            return Lease(id=lease_id, item_id=item_id, annotator=annotator, created_at=now, expires_at=expires_at)
    return None


@dataclass(frozen=True)
class _Leased:
    lease_id: int
    item_id: int


@dataclass(frozen=True)
class _Gates:
    excluded: bool  # from the whole campaign, by an admin
    closed_pairs: list[tuple[str, str]]  # no items to rank: excluded by gold, or qualification not passed
    to_qualify: list[tuple[str, str]]  # qualification items still to be offered


def _gates(campaign: Campaign, rows: list[tuple[str, str, str]]) -> _Gates:
    excluded, closed, decided = False, [], set()
    for kind, prompt, response in rows:
        if kind == "excluded" and not prompt:
            excluded = True
        elif kind == "excluded" or kind == "failed":
            closed.append((prompt, response))
        if kind in ("passed", "failed"):
            decided.add((prompt, response))
    to_qualify = [(prompt, response) for prompt, response in campaign.qualification_pairs or []
                  if (prompt, response) not in decided]
    return _Gates(excluded, sorted(set(closed) | set(to_qualify)), to_qualify)


def _picks(campaign: Campaign, annotator, native: list[str], reading: list[str], gates: _Gates, gold: bool,
           lease: tuple[datetime, datetime]) -> Iterator[int | _Leased]:
    """Item ids to try, in order: qualification items first, then (`gold`: drawn at the campaign's gold rate) a gold
    item, then items to rank. `lease`: (now, expires_at) of the lease to take."""
    query = {"campaign_id": campaign.pk, "annotator_id": annotator.pk, "native": native, "reading": reading}
    if gates.to_qualify:
        # In import order, so that everyone takes the set the same way; every one of them is judged in the end.
        yield from sql.candidate_ids(**query, limit=CANDIDATES, lock=False, kind=Item.Kind.QUALIFICATION.value,
                                     only_pairs=gates.to_qualify)
    # With a gold item to try first, the first task item is only looked at here: it must not be leased yet.
    tasks = _candidate_ids(campaign, annotator, native, reading, skip_pairs=gates.closed_pairs,
                           lease=None if gold else lease)
    if gold:
        first = next(tasks, None)
        if first is None:
            return
        yield from sql.candidate_ids(**query, limit=CANDIDATES, lock=False, kind=Item.Kind.GOLD.value,
                                     skip_pairs=gates.closed_pairs, shuffle=True)
        yield first
    yield from tasks


def _candidate_ids(campaign: Campaign, annotator, native: list[str], reading: list[str],
                   skip_pairs: list[tuple[str, str]] = (),
                   lease: tuple[datetime, datetime] | None = None) -> Iterator[int | _Leased]:
    """Ids of items this annotator may lease, best first (closest to completion, so that finished items and usable
    pairs appear early; then oldest).

    PostgreSQL: first one row with SKIP LOCKED (FOR UPDATE re-checks the room condition on the row it locks, so
    its UPDATE cannot fail); given `lease` (now, expires_at), the same statement takes the row's place and inserts
    the lease (sql.lease_first_open), and what comes back is that lease. When every open row is locked by someone
    else (they are leasing or submitting), the
    rows are not full for that: a second pass reads them without locking and lets the conditional UPDATE wait for
    each row's lock and re-check the room. It holds no row lock while it waits, so it cannot deadlock.
    """
    query = {"campaign_id": campaign.pk, "annotator_id": annotator.pk, "native": native, "reading": reading,
             "skip_pairs": skip_pairs}
    if not connection.features.has_select_for_update_skip_locked:
        yield from sql.candidate_ids(**query, limit=1, lock=False)  # SQLite: this transaction is the only writer
        return
    if lease is not None:
        taken = sql.lease_first_open(candidates=sql.candidate_ids(**query, limit=1, lock=True, as_query=True),
                                     annotator_id=annotator.pk, now=lease[0], expires_at=lease[1])
        if taken is not None:
            yield _Leased(*taken)
            return
        locked = []
    else:
        locked = sql.candidate_ids(**query, limit=1, lock=True)
        yield from locked
    tried = set(locked)
    for _round in range(ROUNDS):
        fresh = [item_id for item_id in sql.candidate_ids(**query, limit=CANDIDATES + len(tried), lock=False)
                 if item_id not in tried]
        if not fresh:
            return
        tried.update(fresh)
        yield from fresh


def leases_reclaim(*, now: datetime | None = None, campaign: Campaign | None = None) -> int:
    """Delete expired leases and give their places back to the items; returns how many were reclaimed."""
    now = now or timezone.now()
    if campaign is None and not sql.expired_leases(now, skip_locked=False):
        return 0  # the common case, answered by one probe of the expires_at index (and no savepoint)
    with transaction.atomic():
        expired = Lease.objects.filter(expires_at__lte=now)
        if campaign is not None:
            expired = expired.filter(item__campaign=campaign)
        if connection.features.has_select_for_update_skip_locked:
            # Two reclaimers never count the same lease twice: each takes the rows the other has not locked.
            expired = expired.select_for_update(skip_locked=True, of=("self",))
        rows = list(expired.values_list("id", "item_id"))
        if not rows:
            return 0
        Lease.objects.filter(id__in=[lease_id for lease_id, _item_id in rows]).delete()
        for item_id, count in Counter(item_id for _lease_id, item_id in rows).items():
            Item.objects.filter(pk=item_id).update(lease_count=F("lease_count") - count)
        return len(rows)


@transaction.atomic
def lease_release(*, item: Item, annotator: AbstractBaseUser) -> bool:
    """Give the annotator's lease on the item back; True when there was one."""
    deleted, _counts = Lease.objects.filter(item=item, annotator=annotator).delete()
    if deleted:
        Item.objects.filter(pk=item.pk).update(lease_count=F("lease_count") - 1)
    return bool(deleted)


@transaction.atomic
def item_skip(*, item: Item, annotator: AbstractBaseUser, reason: str = "") -> Skip:
    """Pass on an item: the lease goes back to the pool and the item is not offered to this annotator again."""
    if len(reason) > 500:
        raise InvalidInput(_("at most 500 characters"), field="reason")
    if Judgment.objects.filter(item=item, annotator=annotator).exists():
        raise Conflict(_("you already judged this item; revise your judgment instead of skipping it"))
    if not Lease.objects.filter(item=item, annotator=annotator).exists():
        raise NotFound(_("you hold no lease on this item"))
    lease_release(item=item, annotator=annotator)
    skip, _created = Skip.objects.update_or_create(item=item, annotator=annotator, defaults={"reason": reason.strip()})
    return skip


@transaction.atomic
def skip_undo(*, item: Item, annotator: AbstractBaseUser) -> None:
    """Take a skip back: the item can be offered to the annotator again (while it still needs judgments)."""
    deleted, _counts = Skip.objects.filter(item=item, annotator=annotator).delete()
    if not deleted:
        raise NotFound(_("you have not skipped this item"))
