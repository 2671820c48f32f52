"""The merged reads of the API's hot path (issue 16, PostgreSQL round trips) give what the separate reads gave.

`next` reads the leased item with its lease (sql.lease_at_once's with_item, PostgreSQL), `submit` its replay
lookup, item and response ids in one statement (sql.judging_context), and an annotator's languages come from one
raw statement (sql.annotator_languages). The glob of tests/test_postgres.py runs this file on PostgreSQL too.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from annotation import selectors
from annotation.models import AnnotatorProfile
from annotation.services.assignment import lease_next
from annotation.services.judgments import Outcome, judgment_submit
from crossfeed.errors import InvalidInput, NotFound
from tests.conftest import new_key, ranks_for

pytestmark = pytest.mark.django_db


def test_languages_read_in_one_statement_match_the_profiles(make_annotator, admin_user, django_assert_num_queries):
    polyglot = make_annotator("polyglot", ["ta", "hi"], ["sw", "ta", "en"])
    reader_of_none = make_annotator("tamil-only", ["ta"])
    for user in (polyglot, reader_of_none):
        expected = AnnotatorProfile.objects.get(user=user).language_codes()
        selectors.forget_annotator_languages(user.pk)
        fresh = get_user_model().objects.get(pk=user.pk)
        with django_assert_num_queries(1):  # the ORM's prefetch took three
            assert selectors.annotator_languages(fresh) == expected
    selectors.forget_annotator_languages(admin_user.pk)
    assert selectors.annotator_languages(admin_user) == ([], [])  # no annotator profile at all


def test_next_with_its_item_gives_what_the_separate_read_gives(campaign, items, annotator):
    lease = lease_next(campaign=campaign, annotator=annotator, with_item=True)
    assert lease.item_rows == selectors.item_and_responses(lease.item_id)
    item, responses = lease.item_rows
    assert item.id == lease.item_id and len(responses) == 3
    # The annotator's live lease comes back (the full path), with its item read after it.
    again = lease_next(campaign=campaign, annotator=annotator, with_item=True)
    assert again.item_id == lease.item_id and again.item_rows == lease.item_rows


def test_submit_reads_replay_item_and_responses_together(campaign, items, annotator, outsider):
    item = items[0]
    key = new_key()
    first = judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=key)
    assert first.outcome is Outcome.CREATED
    replay = judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=key)
    assert replay.outcome is Outcome.REPLAYED and replay.judgment.pk == first.judgment.pk
    with pytest.raises(InvalidInput, match="another item"):
        judgment_submit(annotator=annotator, item_id=items[1].id, ranks=ranks_for(items[1]), idempotency_key=key)
    # A key that is not text is refused by field, never sent to the database as a parameter.
    with pytest.raises(InvalidInput) as refused:
        judgment_submit(annotator=annotator, item_id=items[1].id, ranks=ranks_for(items[1]),
                        idempotency_key={"not": "a key"})
    assert "idempotency_key" in refused.value.field_errors
    # A response id of another item is not one of this item's.
    other_ranks = ranks_for(items[2])
    with pytest.raises(InvalidInput) as wrong:
        judgment_submit(annotator=annotator, item_id=items[1].id, ranks=other_ranks, idempotency_key=new_key())
    assert "ranks" in wrong.value.field_errors
    with pytest.raises(NotFound):
        judgment_submit(annotator=outsider, item_id=items[1].id, ranks=ranks_for(items[1]), idempotency_key=new_key())
    with pytest.raises(NotFound):
        judgment_submit(annotator=annotator, item_id=10**9, ranks={"1": 1}, idempotency_key=new_key())
