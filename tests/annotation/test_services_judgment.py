from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Campaign, Item, Judgment, JudgmentSubmission, Lease
from annotation.services.assignment import lease_next
from annotation.services.campaigns import campaign_update
from annotation.services.judgments import Outcome, check_ranking, judgment_submit
from crossfeed.errors import Conflict, InvalidInput, NotFound
from tests.conftest import item_line, new_key, ranks_for


def submit(user, item, key=None, **changes):
    arguments = {"ranks": ranks_for(item), "idempotency_key": key or new_key()} | changes
    return judgment_submit(annotator=user, item_id=item.id, **arguments)


def test_it_turns_the_lease_into_a_judgment(campaign, annotator, items):
    lease = lease_next(campaign=campaign, annotator=annotator)
    result = submit(annotator, lease.item, flags={str(lease.item.responses.first().id): ["wrong_language"]},
                    comment=" fine ", seconds_spent=42)
    assert result.outcome is Outcome.CREATED
    item = Item.objects.get(pk=lease.item_id)
    assert (item.judgment_count, item.lease_count) == (1, 0)
    assert not Lease.objects.exists()
    judgment = result.judgment
    assert judgment.comment == "fine" and judgment.seconds_spent == 42 and judgment.revision == 1
    assert list(judgment.flags.values()) == [["wrong_language"]]


def test_a_replayed_key_returns_the_same_judgment_and_stores_nothing(campaign, annotator, items):
    first = submit(annotator, items[0], key="key-1")
    again = submit(annotator, items[0], key="key-1", ranks=ranks_for(items[0], [3, 2, 1]))
    assert again.outcome is Outcome.REPLAYED and again.judgment.pk == first.judgment.pk
    assert Judgment.objects.get().ranks == ranks_for(items[0])
    assert JudgmentSubmission.objects.count() == 1


def test_a_key_reused_for_another_item_is_refused(campaign, annotator, items):
    submit(annotator, items[0], key="key-1")
    with pytest.raises(InvalidInput, match="another item"):
        submit(annotator, items[1], key="key-1")


def test_a_new_key_revises_the_own_judgment(campaign, annotator, items):
    first = submit(annotator, items[0])
    revised = submit(annotator, items[0], ranks=ranks_for(items[0], [1, 1, 3]))
    assert revised.outcome is Outcome.REVISED and revised.judgment.pk == first.judgment.pk
    assert revised.judgment.revision == 2 and revised.judgment.ranks == ranks_for(items[0], [1, 1, 3])
    assert Item.objects.get(pk=items[0].pk).judgment_count == 1
    assert JudgmentSubmission.objects.count() == 2


def test_revisions_stop_when_the_campaign_closes(campaign, annotator, items):
    submit(annotator, items[0])
    campaign_update(campaign=campaign, status=Campaign.Status.CLOSED)
    with pytest.raises(Conflict, match="not accepted"):
        submit(annotator, items[0])


def test_a_full_item_answers_409(campaign, annotator, other_annotator, make_annotator, items):
    submit(annotator, items[0])
    submit(other_annotator, items[0])
    late = make_annotator("late", ["ta"], ["sw"])
    with pytest.raises(Conflict, match="received all the judgments"):
        submit(late, items[0])
    assert Judgment.objects.filter(item=items[0]).count() == 2


def test_an_expired_lease_still_counts_when_there_is_room(campaign, annotator, items):
    lease_next(campaign=campaign, annotator=annotator, now=timezone.now() - timedelta(hours=2))
    result = submit(annotator, items[0])
    assert result.outcome is Outcome.CREATED
    item = Item.objects.get(pk=items[0].pk)
    assert (item.judgment_count, item.lease_count) == (1, 0)


def test_others_cannot_take_the_place_held_by_a_lease(campaign, annotator, other_annotator, make_annotator,
                                                       import_items):
    import_items(campaign, [item_line("only")])
    item = Item.objects.get(external_id="only")
    lease_next(campaign=campaign, annotator=annotator)
    submit(other_annotator, item)
    third = make_annotator("third", ["ta"], ["sw"])
    with pytest.raises(Conflict):
        submit(third, item)
    assert submit(annotator, item).outcome is Outcome.CREATED


def test_someone_elses_item_is_not_found(campaign, outsider, items):
    with pytest.raises(NotFound):
        submit(outsider, items[0])


def test_validation_names_each_field(campaign, annotator, items):
    ids = [str(i) for i in items[0].responses.order_by("position").values_list("id", flat=True)]
    with pytest.raises(InvalidInput) as caught:
        judgment_submit(annotator=annotator, item_id=items[0].id, ranks={ids[0]: 1, ids[1]: 9, "99999": 1},
                        flags={ids[0]: ["nonsense"]}, comment="x" * 5001, seconds_spent=-1, idempotency_key="bad key!")
    errors = caught.value.field_errors
    assert set(errors) == {"ranks", "flags", "comment", "seconds_spent", "idempotency_key"}
    assert any("'99999' is not a response" in message for message in errors["ranks"])
    assert any(f"no rank for response(s) {ids[2]}" in message for message in errors["ranks"])
    assert any("rank must be a whole number from 1 to 3" in message for message in errors["ranks"])
    assert not Judgment.objects.exists()


@pytest.mark.parametrize(
    "ranks, flags, expected",
    [
        ({"1": 1, "2": 2}, None, set()),
        ({"1": 1, "2": 1}, {"2": ["garbled", "garbled"]}, set()),
        ([1, 2], None, {"ranks"}),
        ({"1": True, "2": 1}, None, {"ranks"}),
        ({"1": "1", "2": 2}, None, {"ranks"}),
        ({"1": 1, "2": 2}, {"1": "garbled"}, {"flags"}),
        ({"1": 1, "2": 2}, ["garbled"], {"flags"}),
        ({"1": 0, "2": 2}, None, {"ranks"}),
    ],
)
def test_check_ranking(ranks, flags, expected):
    clean_ranks, clean_flags, errors = check_ranking([1, 2], ranks, flags, ["garbled", "unsafe"])
    assert set(errors) == expected
    if not expected and flags:
        assert clean_flags == {"2": ["garbled"]}


def test_the_database_refuses_two_judgments_by_one_annotator(campaign, annotator, items):
    first = submit(annotator, items[0]).judgment
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(item=items[0], annotator=annotator, ranks=first.ranks)


def test_raising_k_reopens_complete_items(campaign, annotator, other_annotator, make_annotator, items):
    submit(annotator, items[0])
    submit(other_annotator, items[0])
    campaign_update(campaign=campaign, overlap=3)
    third = make_annotator("third", ["ta"], ["sw"])
    assert submit(third, items[0]).outcome is Outcome.CREATED
