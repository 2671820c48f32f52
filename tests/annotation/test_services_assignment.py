from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Campaign, Item, Lease, Skip
from annotation.services.assignment import item_skip, lease_next, lease_release, leases_reclaim
from annotation.services.campaigns import campaign_update
from annotation.services.judgments import judgment_submit
from crossfeed.errors import Conflict, InvalidInput
from tests.conftest import item_line, new_key, ranks_for


def judge(user, item):
    return judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())


def test_it_leases_an_eligible_item_for_lease_minutes(campaign, annotator, items):
    now = timezone.now()
    lease = lease_next(campaign=campaign, annotator=annotator, now=now)
    assert lease.item_id == items[0].id
    assert lease.expires_at == now + timedelta(minutes=campaign.lease_minutes)
    assert Item.objects.get(pk=items[0].id).lease_count == 1


def test_it_returns_the_live_lease_again(campaign, annotator, items):
    first = lease_next(campaign=campaign, annotator=annotator)
    again = lease_next(campaign=campaign, annotator=annotator)
    assert again.pk == first.pk and Lease.objects.count() == 1


def test_it_routes_by_native_and_read_languages(campaign, make_annotator, import_items):
    import_items(campaign, [item_line("sw-ta", pivot=False), item_line("en-ta", prompt_lang="en", pivot=False),
                            item_line("fr-ta-pivot", prompt_lang="fr"), item_line("sw-ar", response_lang="ar")])
    reads_sw = make_annotator("a", ["ta"], ["sw"])
    reads_en = make_annotator("b", ["ta"], ["en"])
    arabic = make_annotator("c", ["ar"], ["sw"])
    reads_nothing = make_annotator("d", ["ta"], [])

    def leased(user):
        ids = []
        while (lease := lease_next(campaign=campaign, annotator=user)) is not None:
            ids.append(lease.item.external_id)
            lease_release(item=lease.item, annotator=user)
            Skip.objects.create(item=lease.item, annotator=user)
        return sorted(ids)

    assert leased(reads_sw) == ["sw-ta"]
    # The pivot is English, so an English reader may judge the French instruction.
    assert leased(reads_en) == ["en-ta", "fr-ta-pivot"]
    assert leased(arabic) == ["sw-ar"]
    assert leased(reads_nothing) == []


def test_it_prefers_items_closest_to_completion_then_oldest(campaign, annotator, other_annotator, make_annotator,
                                                               items):
    campaign_update(campaign=campaign, overlap=3)
    judge(other_annotator, items[3])
    assert lease_next(campaign=campaign, annotator=annotator).item_id == items[3].id
    third = make_annotator("third", ["ta"], ["sw"])
    assert lease_next(campaign=campaign, annotator=third).item_id == items[3].id


def test_it_never_hands_out_more_places_than_k(campaign, make_annotator, import_items):
    import_items(campaign, [item_line("only")])
    users = [make_annotator(f"u{n}", ["ta"], ["sw"]) for n in range(3)]
    leases = [lease_next(campaign=campaign, annotator=user) for user in users]
    assert [lease is not None for lease in leases] == [True, True, False]


def test_it_skips_items_the_annotator_judged_or_skipped(campaign, annotator, items):
    lease = lease_next(campaign=campaign, annotator=annotator)
    judge(annotator, lease.item)
    second = lease_next(campaign=campaign, annotator=annotator)
    assert second.item_id != lease.item_id
    item_skip(item=second.item, annotator=annotator, reason="cannot read")
    third = lease_next(campaign=campaign, annotator=annotator)
    assert third.item_id not in {lease.item_id, second.item_id}
    assert Item.objects.get(pk=second.item_id).lease_count == 0


def test_expired_leases_are_reclaimed(campaign, make_annotator, import_items):
    import_items(campaign, [item_line("only")])
    first, second, third = (make_annotator(f"u{n}", ["ta"], ["sw"]) for n in range(3))
    start = timezone.now()
    lease_next(campaign=campaign, annotator=first, now=start)
    lease_next(campaign=campaign, annotator=second, now=start)
    assert lease_next(campaign=campaign, annotator=third, now=start) is None
    later = start + timedelta(minutes=campaign.lease_minutes, seconds=1)
    assert lease_next(campaign=campaign, annotator=third, now=later) is not None
    assert Lease.objects.filter(annotator__in=[first, second]).count() == 0
    assert Item.objects.get().lease_count == 1


def test_reclaim_counts_each_lease_once(campaign, annotator, items):
    lease_next(campaign=campaign, annotator=annotator, now=timezone.now() - timedelta(hours=1))
    assert leases_reclaim() == 1 and leases_reclaim() == 0
    assert sum(Item.objects.values_list("lease_count", flat=True)) == 0


def test_paused_campaign_hands_out_nothing(campaign, annotator, items):
    campaign_update(campaign=campaign, status=Campaign.Status.PAUSED)
    with pytest.raises(Conflict, match="paused"):
        lease_next(campaign=campaign, annotator=annotator)


def test_a_user_without_languages_gets_a_clear_message(campaign, admin_user, items):
    with pytest.raises(InvalidInput, match="no native language"):
        lease_next(campaign=campaign, annotator=admin_user)


def test_skip_needs_a_lease_and_a_reasonable_reason(campaign, annotator, items):
    with pytest.raises(Exception, match="no lease"):
        item_skip(item=items[0], annotator=annotator)
    lease = lease_next(campaign=campaign, annotator=annotator)
    with pytest.raises(InvalidInput):
        item_skip(item=lease.item, annotator=annotator, reason="x" * 501)


def test_the_database_refuses_more_places_than_k(campaign, items):
    # The CHECK constraint holds even for code that bypasses the services.
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=items[0].pk).update(judgment_count=2, lease_count=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=items[0].pk).update(judgment_count=3)


def test_lowering_k_keeps_items_that_have_more(campaign, annotator, other_annotator, items):
    judge(annotator, items[0])
    judge(other_annotator, items[0])
    campaign_update(campaign=campaign, overlap=1)
    targets = dict(Item.objects.values_list("id", "target"))
    assert targets[items[0].id] == 2 and targets[items[1].id] == 1
