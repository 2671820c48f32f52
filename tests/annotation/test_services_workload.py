"""Workload per language pair, on a campaign worked out by hand (overlap k = 2).

sw→ta: 3 items (pivot en). tamil1 (reads sw) judged items 0 and 1 an hour ago; tamil2 (reads en: the pivot) judged
item 0 thirty hours ago. Left: item 1 (1 judgment) and item 2 (none) = 2 items, 1 + 2 = 3 judgments. Last day: 2
judgments = 1/12 per hour, so 3 more take 36 hours. Who can take them: tamil1, tamil2; not tamil3 (reads only fr).
en→ar: 2 items, none judged (4 judgments left), no pace. Only arabic2 reads en (arabic1 reads fr; arabic3 reads en but
the account is inactive): 1 annotator for items that need 2, so the pair can never complete.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from annotation.models import Item, Judgment
from annotation.services.judgments import judgment_submit
from annotation.services.workload import campaign_workload
from tests.conftest import item_line, new_key, ranks_for


@pytest.fixture
def busy(campaign, import_items, make_annotator):
    import_items(campaign, [item_line(f"t-{n}") for n in range(3)]
                 + [item_line(f"a-{n}", prompt_lang="en", response_lang="ar", pivot=False) for n in range(2)])
    tamil1 = make_annotator("tamil1", ["ta"], ["sw"])
    tamil2 = make_annotator("tamil2", ["ta"], ["en"])
    make_annotator("tamil3", ["ta"], ["fr"])
    make_annotator("arabic1", ["ar"], ["fr"])
    make_annotator("arabic2", ["ar"], ["en"])
    make_annotator("arabic3", ["ar"], ["en"])
    get_user_model().objects.filter(username="arabic3").update(is_active=False)
    now = timezone.now()
    items = list(Item.objects.filter(response_language="ta").order_by("id"))
    for user, item, hours_ago in [(tamil1, items[0], 1), (tamil1, items[1], 1), (tamil2, items[0], 30)]:
        result = judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
        Judgment.objects.filter(pk=result.judgment.id).update(created_at=now - timedelta(hours=hours_ago))
    return campaign, now


def test_it_gives_the_hand_worked_workload(busy):
    campaign, now = busy
    workload = campaign_workload(campaign=campaign, now=now)
    pairs = {(row.prompt_language, row.response_language): row for row in workload}
    tamil = pairs[("sw", "ta")]
    assert (tamil.items, tamil.items_left, tamil.judgments_left) == (3, 2, 3)
    assert tamil.annotators == ["tamil1", "tamil2"]
    assert (tamil.judgments_last_day, tamil.active_last_day) == (2, 1)
    assert tamil.judgments_per_hour == pytest.approx(2 / 24, abs=0.005)
    assert tamil.finish_at == now + timedelta(hours=36)
    assert not tamil.short_of_annotators
    arabic = pairs[("en", "ar")]
    assert (arabic.items, arabic.items_left, arabic.judgments_left) == (2, 2, 4)
    assert arabic.annotators == ["arabic2"]
    assert arabic.finish_at is None and arabic.judgments_per_hour == 0
    assert arabic.short_of_annotators


def test_the_admin_page_shows_it(busy, admin_user, client):
    campaign, _now = busy
    client.force_login(admin_user)
    response = client.get(reverse("admin:annotation_campaign_workload", kwargs={"campaign_id": campaign.id}))
    assert response.status_code == 200
    page = response.content.decode()
    assert "tamil1, tamil2" in page and "too few" in page
    change = client.get(reverse("admin:annotation_campaign_change", args=[campaign.id])).content.decode()
    assert reverse("admin:annotation_campaign_workload", kwargs={"campaign_id": campaign.id}) in change


def test_excluded_annotators_and_checks_do_not_count(busy, import_items, admin_user):
    from annotation.models import AnnotatorStanding, Exclusion, QualificationResult

    campaign, now = busy
    import_items(campaign, [{**item_line("gold-0"), "gold": {"best": [0]}}])  # a check: no work left by it
    users = {user.username: user for user in get_user_model().objects.all()}
    Exclusion.objects.create(campaign=campaign, annotator=users["tamil2"], reason="careless")
    AnnotatorStanding.objects.create(campaign=campaign, annotator=users["arabic2"], prompt_language_id="en",
                                     response_language_id="ar", state=AnnotatorStanding.State.EXCLUDED)
    make = {"campaign": campaign, "prompt_language_id": "sw", "response_language_id": "ta", "answered": 4,
            "pass_mark": 0.8}
    QualificationResult.objects.create(annotator=users["tamil1"], correct=1, passed=False, **make)
    workload = campaign_workload(campaign=campaign, now=now)
    pairs = {(row.prompt_language, row.response_language): row for row in workload}
    assert (pairs[("sw", "ta")].items, pairs[("sw", "ta")].judgments_left) == (3, 3)
    assert pairs[("sw", "ta")].annotators == [] and pairs[("en", "ar")].annotators == []
