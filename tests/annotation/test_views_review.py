"""The reviewers' pages (disagreements, adjudication) and what the annotation page tells an annotator about their
gold record."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from annotation.models import Adjudication, AnnotatorStanding, Item, QualificationResult
from annotation.serializers import response_order
from annotation.services.judgments import judgment_submit
from annotation.services.quality import REVIEWER_GROUP
from tests.conftest import new_key, ranks_for


@pytest.fixture
def reviewer(make_annotator):
    user = make_annotator("reviewer", ["ta"], ["sw"])
    user.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    return user


@pytest.fixture
def disputed(campaign, items, annotator, other_annotator):
    """it-0: the two annotators rank reversed (most disagreement); it-1: they agree; it-2: one tie apart."""
    orders = {0: ([1, 2, 3], [3, 2, 1]), 1: ([1, 2, 3], [1, 2, 3]), 2: ([1, 2, 3], [1, 1, 3])}
    for index, (mine, theirs) in orders.items():
        judgment_submit(annotator=annotator, item_id=items[index].id, ranks=ranks_for(items[index], mine),
                        idempotency_key=new_key())
        judgment_submit(annotator=other_annotator, item_id=items[index].id, ranks=ranks_for(items[index], theirs),
                        comment=f"comment on {index}", idempotency_key=new_key())
    return items


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_disagreement_list_puts_the_most_disputed_first(campaign, disputed, reviewer):
    page = client_for(reviewer).get(reverse("annotation:disagreements", args=[campaign.id]))
    assert page.status_code == 200
    listed = re.findall(r'<tr data-item="(\d+)">.*?<td>(\d\.\d\d)</td>', page.content.decode(), re.S)
    # it-0 reversed: every pair differs (1.00); it-2: one of 3 pairs tied in one only (0.5 / 3); it-1 agrees.
    assert listed == [(str(disputed[0].id), "1.00"), (str(disputed[2].id), "0.17"), (str(disputed[1].id), "0.00")]
    by_item = client_for(reviewer).get(reverse("annotation:disagreements", args=[campaign.id]),
                                       {"sort": "item", "pair": "sw>ta"})
    assert re.findall(r'<tr data-item="(\d+)">', by_item.content.decode()) == [str(item.id) for item in disputed[:3]]
    other_pair = client_for(reviewer).get(reverse("annotation:disagreements", args=[campaign.id]), {"pair": "en>ar"})
    assert 'data-item="' not in other_pair.content.decode()


def test_the_adjudication_page_shows_the_letters_each_annotator_saw(campaign, disputed, reviewer, annotator,
                                                                    other_annotator):
    item = disputed[0]
    ids = list(item.responses.order_by("position").values_list("id", flat=True))
    page = client_for(reviewer).get(reverse("annotation:adjudicate", args=[item.id]))
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r'<tr data-response="(\d+)">(.*?)</tr>', html, re.S)
    # The reviewer's own order gives A, B, C.
    assert [int(response_id) for response_id, _ in rows] == response_order(item.id, reviewer.id, ids)
    for index, (response_id, row) in enumerate(rows):
        assert f'<span class="letter">{"ABC"[index]}</span>' in row
        seen = re.findall(r"\(saw as ([A-H])\)", row)
        expected = ["ABC"[response_order(item.id, user.id, ids).index(int(response_id))]
                    for user in (annotator, other_annotator)]
        assert seen == expected
    # Reviewers see annotators by number, not by name; comments are shown.
    assert "Annotator 1" in html and "tamil1" not in html and "comment on 0" in html


def test_a_reviewer_records_a_final_ranking(campaign, disputed, reviewer):
    item = disputed[0]
    ids = list(item.responses.order_by("position").values_list("id", flat=True))
    client = client_for(reviewer)
    url = reverse("annotation:adjudicate", args=[item.id])
    refused = client.post(url, {f"rank_{ids[0]}": "1", f"rank_{ids[1]}": "2"})
    assert refused.status_code == 422
    letter = "ABC"[response_order(item.id, reviewer.id, ids).index(ids[2])]
    assert f"Response {letter}: Give this response a rank." in refused.content.decode()
    assert not Adjudication.objects.exists()
    saved = client.post(url, {f"rank_{ids[0]}": "3", f"rank_{ids[1]}": "2", f"rank_{ids[2]}": "1",
                              "wrong_language": [str(ids[0])], "note": "checked"})
    assert saved.status_code == 302
    final = Adjudication.objects.get(item=item)
    assert final.ranks == {str(ids[0]): 3, str(ids[1]): 2, str(ids[2]): 1}
    assert (final.wrong_language, final.note, final.reviewer) == ([ids[0]], "checked", reviewer)


def test_who_may_review(campaign, disputed, annotator, make_annotator, admin_user):
    assert client_for(annotator).get(reverse("annotation:disagreements", args=[campaign.id])).status_code == 403
    assert client_for(annotator).get(reverse("annotation:adjudicate", args=[disputed[0].id])).status_code == 403
    # A reviewer of another language sees none of these items.
    arabic = make_annotator("arabic-reviewer", ["ar"], ["en"])
    arabic.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    assert client_for(arabic).get(reverse("annotation:adjudicate", args=[disputed[0].id])).status_code == 404
    listing = client_for(arabic).get(reverse("annotation:disagreements", args=[campaign.id]))
    assert listing.status_code == 200 and 'data-item="' not in listing.content.decode()
    # Staff with the admin's rights see every item and the annotators' names.
    page = client_for(admin_user).get(reverse("annotation:adjudicate", args=[disputed[0].id]))
    assert page.status_code == 200 and "tamil1" in page.content.decode()


def test_gold_items_are_not_adjudicated(campaign, import_items, reviewer):
    import_items(campaign, [{"external_id": "g-0", "prompt": {"text": "p", "language": "sw"},
                             "responses": [{"text": "a", "language": "ta"}, {"text": "b", "language": "ta"}],
                             "gold": {"best": [0]}}])
    gold = Item.objects.get(external_id="g-0")
    assert client_for(reviewer).get(reverse("annotation:adjudicate", args=[gold.id])).status_code == 404


def test_the_annotation_page_tells_a_warned_annotator(campaign, items, annotator):
    AnnotatorStanding.objects.create(campaign=campaign, annotator=annotator, prompt_language_id="sw",
                                     response_language_id="ta", state="warned", gold_seen=10, gold_correct=6)
    QualificationResult.objects.create(campaign=campaign, annotator=annotator, prompt_language_id="sw",
                                       response_language_id="ta", answered=5, correct=4, pass_mark=0.8, passed=True)
    html = client_for(annotator).get(reverse("annotation:annotate", args=[campaign.id])).content.decode()
    assert 'data-standing="warned"' in html and "Please read the guidelines again" in html
    assert 'data-qualification="passed"' in html and "4 of 5 right" in html


def test_the_annotation_page_says_nothing_to_an_annotator_in_good_standing(campaign, items, annotator):
    html = client_for(annotator).get(reverse("annotation:annotate", args=[campaign.id])).content.decode()
    assert "standing-notice" not in html
