"""Races on the capacity rule (never more than k judgments per item) with real threads and real connections.

These run on SQLite in the normal suite (IMMEDIATE transactions serialise the writers on the busy timeout) and on
PostgreSQL through tests/test_postgres.py (row locks and SKIP LOCKED). Every thread closes its own connection at
the end: an open one would keep the test database busy when it is flushed or dropped. No test retries on
"database is locked": that error means the busy timeout was too short, which is a finding, not noise.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import Count

from annotation.models import Item, Judgment, JudgmentSubmission, Lease
from annotation.services.assignment import lease_next
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import Outcome, judgment_submit
from tests.conftest import item_line, new_key

pytestmark = pytest.mark.django_db(transaction=True)

# A thread that waits longer than this on the barrier or the join means a deadlock, not a slow machine.
JOIN_TIMEOUT = 120


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Dozens of annotators with the default PBKDF2 would spend most of the test hashing passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_threads(workers: list[Callable[[], object]], *, timeout: float = JOIN_TIMEOUT) -> list[object]:
    """Start every worker at the same moment (a barrier), each on its own connection; re-raise the first error."""
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)
    errors: list[BaseException] = []

    def body(index: int, work: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = work()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(index, work), daemon=True) for index, work in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker thread is stuck (deadlock?)"
    if errors:
        raise AssertionError(f"{len(errors)} worker(s) failed; first: {errors[0]!r}") from errors[0]
    return results


def test_it_runs_on_the_expected_database():
    """tests/test_postgres.py sets CROSSFEED_EXPECT_VENDOR=postgresql, so a silent fallback to SQLite fails."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1
    print(f"database vendor: {connection.vendor}")
    expected = os.environ.get("CROSSFEED_EXPECT_VENDOR")
    if expected:
        assert connection.vendor == expected


def test_it_never_gives_an_item_more_than_k_judgments(admin_user, make_annotator, import_items):
    k, n_items, n_annotators = 3, 20, 24
    campaign = campaign_create(name="Race", created_by=admin_user, overlap=k)
    import_items(campaign, [item_line(f"race-{index}") for index in range(n_items)])
    annotators = [make_annotator(f"racer{index:02d}", ["ta"], ["sw"]) for index in range(n_annotators)]
    response_ids = {
        item.id: list(item.responses.values_list("id", flat=True)) for item in campaign.items.all()
    }

    def annotate(annotator, seed: int) -> list[tuple[int, Outcome]]:
        rng = random.Random(seed)
        done: list[tuple[int, Outcome]] = []
        while (lease := lease_next(campaign=campaign, annotator=annotator)) is not None:
            ids = response_ids[lease.item_id]
            ranks = {str(response_id): rng.randint(1, len(ids)) for response_id in ids}  # ties allowed
            result = judgment_submit(annotator=annotator, item_id=lease.item_id, ranks=ranks, flags={},
                                     comment="", seconds_spent=rng.randint(1, 60), idempotency_key=new_key())
            done.append((lease.item_id, result.outcome))
            # The same annotator is never handed the same item twice: a loop here would mean a lease leak.
            assert len(done) <= n_items
        return done

    results = run_threads([lambda a=a, i=i: annotate(a, i) for i, a in enumerate(annotators)])

    # The capacity rule first: never more than k, counters equal to the rows they count, no duplicate.
    rows = Counter(Judgment.objects.filter(item__campaign=campaign).values_list("item_id", flat=True))
    live_leases = Counter(Lease.objects.values_list("item_id", flat=True))
    assert Judgment.objects.values("item", "annotator").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    for item in Item.objects.filter(campaign=campaign):
        assert rows[item.id] <= k, f"item {item.external_id} has {rows[item.id]} judgments, k = {k}"
        assert item.judgment_count == rows[item.id], item.external_id
        assert item.lease_count == live_leases[item.id], item.external_id
    outcomes = [outcome for done in results for _, outcome in done]
    assert set(outcomes) == {Outcome.CREATED}
    assert len(outcomes) == sum(rows.values()) == JudgmentSubmission.objects.count()
    for done in results:
        assert len({item_id for item_id, _ in done}) == len(done)
    # Then progress: every thread stopped only because nothing was left, so every item must be complete.
    assert not live_leases, "every lease ended as a judgment"
    unfinished = sorted(rows[item.id] for item in Item.objects.filter(campaign=campaign) if not item.is_complete)
    assert not unfinished, (
        f"all {n_annotators} threads were told 'nothing left' (lease_next returned None) while {len(unfinished)} "
        f"item(s) still had room (judgments: {unfinished}, k = {k}) and eligible annotators who had not judged them"
    )
    assert sum(rows.values()) == n_items * k


def test_it_stores_one_judgment_for_one_idempotency_key_sent_eight_times(campaign, annotator, items):
    lease = lease_next(campaign=campaign, annotator=annotator)
    item = Item.objects.get(pk=lease.item_id)
    ranks = {str(response_id): index + 1
             for index, response_id in enumerate(item.responses.values_list("id", flat=True))}
    key = new_key()

    def send():
        result = judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks, flags={}, comment="same",
                                 seconds_spent=5, idempotency_key=key)
        return result.judgment.pk, result.outcome

    results = run_threads([send] * 8)

    judgment = Judgment.objects.get(item=item, annotator=annotator)
    assert sorted(outcome.value for _, outcome in results) == ["created"] + ["replayed"] * 7
    assert {pk for pk, _ in results} == {judgment.pk}
    assert judgment.revision == 1
    assert JudgmentSubmission.objects.filter(annotator=annotator, idempotency_key=key).count() == 1
    item.refresh_from_db()
    assert (item.judgment_count, item.lease_count) == (1, 0)
    assert not Lease.objects.filter(item=item).exists()


def test_it_leases_a_single_item_to_exactly_k_of_many_annotators(campaign, make_annotator, import_items):
    assert campaign.overlap == 2
    import_items(campaign, [item_line("only")])
    item = campaign.items.get()
    annotators = [make_annotator(f"eager{index:02d}", ["ta"], ["sw"]) for index in range(12)]

    results = run_threads([lambda a=a: lease_next(campaign=campaign, annotator=a) for a in annotators])

    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 2
    assert {lease.item_id for lease in winners} == {item.id}
    item.refresh_from_db()
    assert (item.lease_count, item.judgment_count) == (2, 0)
    assert set(Lease.objects.values_list("annotator_id", flat=True)) == {lease.annotator_id for lease in winners}
