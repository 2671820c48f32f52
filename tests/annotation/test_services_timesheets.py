"""Active time and pay: the computation on a timeline worked out by hand, then the same timeline through the
database, the report, its CSV and the API, and the annotation page's activity ping.

The timeline (idle limit 5 minutes; P1 = sw→ta, P2 = en→ta; UTC; 3 March 2025 unless said):

  09:00 ping (item of P1)          [09:00:00, 09:01:00]  P1
  09:01 ping (item of P1)          [09:01:00, 09:02:00]  P1
  09:03:30 judgment P1, 150 s      [09:01:00, 09:03:30]  P1
  09:06:00 judgment P2, 600 s      [09:01:00, 09:06:00]  P2   (600 s capped at the 300 s idle limit)
  09:10 ping, no item              [09:10:00, 09:11:00]  →P2  (4 min gap: bridged; pair of the next evidence)
  09:12:00 judgment P2, 30 s       [09:11:30, 09:12:00]  P2
  -- 18 min gap: cut --
  09:30 ping (item of P1)          [09:30:00, 09:31:00]  P1
  09:31 ping, no item              [09:31:00, 09:32:00]  →P1  (nothing after it: pair of the one before)
  -- gap: cut --
  23:59 ping (item of P1)          [23:59:00, 00:00:00]  P1
  4 March 00:01:00 judgment P1, 90 s [23:59:30, 00:01:00] P1  (split at midnight)

Each second of a session goes to the pair of the next evidence to end:
  session 1, 09:00–09:12 (720 s): P1 60 + 60 + 90 = 210 s; P2 150 (09:03:30–09:06) + 300 (09:06–09:11) + 60 = 510 s
  session 2, 09:30–09:32 (120 s): P1 120 s
  session 3, 23:59–00:01 (120 s): P1 60 s on 3 March, 60 s on 4 March
So 3 March: P1 210 + 120 + 60 = 390 s, P2 510 s (900 s in all); 4 March: P1 60 s.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from annotation.models import ActivityPing, Item, Judgment, JudgmentSubmission, PayRate
from annotation.services.judgments import judgment_submit
from annotation.services.timesheets import (
    Evidence,
    active_time,
    campaign_active_seconds,
    judgment_evidence,
    pay_rate_for,
    ping_evidence,
    report_period,
    time_report,
    time_report_csv,
)
from crossfeed.errors import InvalidInput
from tests.conftest import item_line, new_key, ranks_for

P1, P2 = ("sw", "ta"), ("en", "ta")
LIMIT = timedelta(minutes=5)


def at(hour: int, minute: int, second: int = 0, day: int = 3) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


def timeline() -> list[Evidence]:
    return [
        ping_evidence(minute=at(9, 0), pair=P1),
        ping_evidence(minute=at(9, 1), pair=P1),
        judgment_evidence(submitted_at=at(9, 3, 30), seconds_spent=150, pair=P1, limit=LIMIT),
        judgment_evidence(submitted_at=at(9, 6), seconds_spent=600, pair=P2, limit=LIMIT),
        ping_evidence(minute=at(9, 10), pair=None),
        judgment_evidence(submitted_at=at(9, 12), seconds_spent=30, pair=P2, limit=LIMIT),
        ping_evidence(minute=at(9, 30), pair=P1),
        ping_evidence(minute=at(9, 31), pair=None),
        ping_evidence(minute=at(23, 59), pair=P1),
        judgment_evidence(submitted_at=at(0, 1, day=4), seconds_spent=90, pair=P1, limit=LIMIT),
    ]


HAND_WORKED = {(date(2025, 3, 3), P1): 390.0, (date(2025, 3, 3), P2): 510.0, (date(2025, 3, 4), P1): 60.0}


def test_it_computes_the_hand_worked_timeline():
    assert active_time(timeline(), limit=LIMIT, tz=UTC) == HAND_WORKED


def test_it_gives_the_same_answer_whatever_the_order_of_the_evidence():
    assert active_time(list(reversed(timeline())), limit=LIMIT, tz=UTC) == HAND_WORKED


def test_it_cuts_gaps_longer_than_the_idle_limit_and_keeps_shorter_ones():
    two_pings = [ping_evidence(minute=at(9, 0), pair=P1), ping_evidence(minute=at(9, 6), pair=P1)]
    # 09:01 → 09:06 is 5 minutes: bridged (11 min in all); with a 4-minute limit it is cut (2 × 1 min).
    assert active_time(two_pings, limit=LIMIT, tz=UTC) == {(date(2025, 3, 3), P1): 420.0}
    assert active_time(two_pings, limit=timedelta(minutes=4), tz=UTC) == {(date(2025, 3, 3), P1): 120.0}


def test_it_splits_days_in_the_given_time_zone():
    # India is UTC+5:30: sessions 1 and 2 fall on 3 March (14:30–15:02), session 3 wholly on 4 March (05:29–05:31).
    by_day = active_time(timeline(), limit=LIMIT, tz=ZoneInfo("Asia/Kolkata"))
    assert by_day == {(date(2025, 3, 3), P1): 330.0, (date(2025, 3, 3), P2): 510.0, (date(2025, 3, 4), P1): 120.0}


def test_a_lone_submission_without_timing_counts_nothing():
    point = judgment_evidence(submitted_at=at(15, 0), seconds_spent=None, pair=P1, limit=LIMIT)
    assert active_time([point], limit=LIMIT, tz=UTC) == {}


def test_the_most_specific_rate_applies():
    rates = [
        PayRate(id=1, hourly_rate=Decimal("10")),
        PayRate(id=2, response_language_id="ta", hourly_rate=Decimal("12")),
        PayRate(id=3, prompt_language_id="en", response_language_id="ta", hourly_rate=Decimal("20")),
        PayRate(id=4, annotator_id=7, hourly_rate=Decimal("30")),
        PayRate(id=5, annotator_id=7, prompt_language_id="en", response_language_id="ta", hourly_rate=Decimal("40")),
    ]
    assert pay_rate_for(rates, annotator_id=1, pair=P1).id == 2
    assert pay_rate_for(rates, annotator_id=1, pair=P2).id == 3
    assert pay_rate_for(rates, annotator_id=1, pair=("en", "ar")).id == 1
    assert pay_rate_for(rates, annotator_id=1, pair=None).id == 1
    assert pay_rate_for(rates, annotator_id=7, pair=P1).id == 4
    assert pay_rate_for(rates, annotator_id=7, pair=P2).id == 5
    assert pay_rate_for([], annotator_id=7, pair=P2) is None


@pytest.mark.parametrize("date_from, date_to, field", [
    ("2025-03-32", None, "from"), ("yesterday", "2025-03-01", "from"), ("2025-03-05", "2025-03-04", "to"),
    ("2024-01-01", "2025-03-01", "to"),
])
def test_it_refuses_a_bad_period_naming_the_field(date_from, date_to, field):
    with pytest.raises(InvalidInput) as refused:
        report_period(date_from=date_from, date_to=date_to)
    assert field in refused.value.field_errors


def test_the_period_defaults_to_this_month_up_to_today():
    assert report_period(date_from=None, date_to="", today=date(2025, 3, 17)) == (date(2025, 3, 1), date(2025, 3, 17))


# --- the same timeline through the database ---------------------------------------------------------------------


def judge(user, item, when: datetime, seconds: int | None, order: list[int] | None = None):
    result = judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item, order), idempotency_key=new_key())
    Judgment.objects.filter(pk=result.judgment.id).update(created_at=when, updated_at=when, seconds_spent=seconds)
    JudgmentSubmission.objects.filter(judgment_id=result.judgment.id).update(created_at=when)


@pytest.fixture
def worked(campaign, import_items, make_annotator, admin_user):
    """The timeline above for `bilingual` (native Tamil, reads Swahili and English), and one judgment by `other` on
    4 March; rates: 10 EUR/h for everyone, 20 EUR/h for en→ta, 99 EUR/h for `other` only."""
    import_items(campaign, [item_line(f"p1-{n}") for n in range(2)]
                 + [item_line(f"p2-{n}", prompt_lang="en", pivot=False) for n in range(2)])
    bilingual = make_annotator("bilingual", ["ta"], ["sw", "en"])
    other = make_annotator("other", ["ta"], ["sw"])
    p1 = list(Item.objects.filter(prompt_language="sw", kind=Item.Kind.TASK).order_by("id"))
    p2 = list(Item.objects.filter(prompt_language="en").order_by("id"))

    def ping(user, when: datetime, item=None):
        ActivityPing.objects.create(annotator=user, campaign=campaign, minute=when, item=item)

    ping(bilingual, at(9, 0), p1[0])
    ping(bilingual, at(9, 1), p1[0])
    judge(bilingual, p1[0], at(9, 3, 30), 150)
    judge(bilingual, p2[0], at(9, 6), 600)
    ping(bilingual, at(9, 10))
    judge(bilingual, p2[1], at(9, 12), 30)
    ping(bilingual, at(9, 30), p1[1])
    ping(bilingual, at(9, 31))
    ping(bilingual, at(23, 59), p1[1])
    judge(bilingual, p1[1], at(0, 1, day=4), 90)
    judge(other, p1[0], at(10, 0, day=4), 120)  # 2 minutes, alone
    PayRate.objects.create(campaign=campaign, hourly_rate=Decimal("10.00"))
    PayRate.objects.create(campaign=campaign, prompt_language_id="en", response_language_id="ta",
                           hourly_rate=Decimal("20.00"))
    PayRate.objects.create(campaign=campaign, annotator=other, hourly_rate=Decimal("99.00"))
    return campaign


def row_of(report, username):
    return next(row for row in report["annotators"] if row["user"] == username)


def test_the_report_gives_the_hand_worked_hours_items_and_amounts(worked):
    report = time_report(campaign=worked, date_from=date(2025, 3, 3), date_to=date(2025, 3, 4))
    bilingual = row_of(report, "bilingual")
    assert bilingual["active_seconds"] == 960
    assert bilingual["days"] == [{"date": "2025-03-03", "active_seconds": 900, "hours": 0.25},
                                 {"date": "2025-03-04", "active_seconds": 60, "hours": 0.02}]
    pairs = {row["pair"]: row for row in bilingual["language_pairs"]}
    assert set(pairs) == {"sw→ta", "en→ta"}
    # P1: 450 s × 10 €/h = 1.25 €; P2: 510 s × 20 €/h = 2.833… → 2.83 €.
    assert (pairs["sw→ta"]["active_seconds"], pairs["sw→ta"]["items"], pairs["sw→ta"]["amount_due"]) == (450, 2,
                                                                                                           "1.25")
    assert (pairs["en→ta"]["active_seconds"], pairs["en→ta"]["items"], pairs["en→ta"]["amount_due"]) == (510, 2,
                                                                                                           "2.83")
    assert bilingual["amount_due"] == "4.08"
    assert bilingual["items"] == 4
    assert bilingual["gold_accuracy"] is None  # no gold items yet (timesheets.gold_accuracy_hook)
    other = row_of(report, "other")
    # 120 s alone at the annotator's own rate: 120 × 99 / 3600 = 3.30.
    assert (other["active_seconds"], other["items"], other["amount_due"]) == (120, 1, "3.30")
    assert report["totals"] == {"active_seconds": 1080, "hours": 0.3, "items": 5, "amount_due": "7.38",
                                "unpriced_seconds": 0}
    assert report["currency"] == "EUR"


def test_active_seconds_over_all_time(worked):
    names = {row.annotator_id: row.annotator.username for row in Judgment.objects.select_related("annotator")}
    assert {names[key]: value for key, value in campaign_active_seconds(campaign=worked).items()} == {
        "bilingual": 960, "other": 120}


def test_the_report_keeps_to_its_days(worked):
    report = time_report(campaign=worked, date_from=date(2025, 3, 3), date_to=date(2025, 3, 3))
    assert [row["user"] for row in report["annotators"]] == ["bilingual"]
    pairs = {row["pair"]: row for row in row_of(report, "bilingual")["language_pairs"]}
    assert (pairs["sw→ta"]["active_seconds"], pairs["sw→ta"]["items"]) == (390, 1)
    assert (pairs["en→ta"]["active_seconds"], pairs["en→ta"]["items"]) == (510, 2)


def test_the_report_gives_gold_accuracy_in_the_period(worked, import_items):
    # Two gold items whose best response is the first; the first judged right, the second with it ranked last.
    import_items(worked, [{**item_line(f"g-{n}"), "gold": {"best": [0]}} for n in range(2)])
    gold = list(Item.objects.filter(kind=Item.Kind.GOLD).order_by("id"))
    bilingual = Judgment.objects.filter(annotator__username="bilingual").first().annotator
    judge(bilingual, gold[0], at(12, 0, day=10), 40)
    judge(bilingual, gold[1], at(12, 1, day=10), 40, order=[3, 1, 2])
    report = time_report(campaign=worked, date_from=date(2025, 3, 10), date_to=date(2025, 3, 10))
    row = row_of(report, "bilingual")
    assert [(p["pair"], p["items"], p["gold_seen"], p["gold_accuracy"]) for p in row["language_pairs"]] == [
        ("sw→ta", 2, 2, 0.5)]
    assert row["gold_accuracy"] == 0.5
    earlier = time_report(campaign=worked, date_from=date(2025, 3, 3), date_to=date(2025, 3, 4))
    assert {p["gold_seen"] for p in row_of(earlier, "bilingual")["language_pairs"]} == {None}


def test_time_without_a_rate_leaves_the_amount_open(worked):
    PayRate.objects.filter(annotator__isnull=True, response_language__isnull=True).delete()
    report = time_report(campaign=worked, date_from=date(2025, 3, 3), date_to=date(2025, 3, 4))
    bilingual = row_of(report, "bilingual")
    assert bilingual["amount_due"] is None  # part of the time (sw→ta) has no rate: no partial sum
    assert bilingual["unpriced_seconds"] == 450


def test_a_ping_naming_an_item_of_another_campaign_names_no_pair(worked, admin_user, import_items):
    from annotation.services.campaigns import campaign_create

    elsewhere = campaign_create(name="Elsewhere", created_by=admin_user)
    import_items(elsewhere, [item_line("x-0", prompt_lang="en", response_lang="ar", pivot=False)])
    user = Judgment.objects.get(annotator__username="other").annotator
    ActivityPing.objects.create(annotator=user, campaign=worked, minute=at(12, 0, day=5),
                                item=Item.objects.get(external_id="x-0"))
    report = time_report(campaign=worked, date_from=date(2025, 3, 5), date_to=date(2025, 3, 5))
    assert [row["pair"] for row in row_of(report, "other")["language_pairs"]] == [None]


def test_the_csv_has_a_row_per_annotator_and_pair(worked):
    report = time_report(campaign=worked, date_from=date(2025, 3, 3), date_to=date(2025, 3, 4))
    rows = list(csv.DictReader(io.StringIO(time_report_csv(report))))
    by_key = {(row["user"], row["language_pair"]): row for row in rows}
    assert set(by_key) == {("bilingual", "en→ta"), ("bilingual", "sw→ta"), ("other", "sw→ta")}
    assert by_key[("bilingual", "en→ta")] == {
        "user": "bilingual", "language_pair": "en→ta", "from": "2025-03-03", "to": "2025-03-04",
        "active_seconds": "510", "active_hours": "0.14", "items": "2", "gold_seen": "", "gold_accuracy": "",
        "hourly_rate": "20.00", "currency": "EUR", "amount_due": "2.83"}


# --- the API ----------------------------------------------------------------------------------------------------


def test_the_api_answers_json_and_csv(worked, admin_user, api):
    url = reverse("api-campaign-time-report", kwargs={"campaign_id": worked.id})
    response = api(admin_user).get(url, {"from": "2025-03-03", "to": "2025-03-04"})
    assert response.status_code == 200, response.content
    assert row_of(response.json(), "bilingual")["amount_due"] == "4.08"
    response = api(admin_user).get(url, {"from": "2025-03-03", "to": "2025-03-04", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"time-report-{worked.id}-2025-03-03-2025-03-04.csv" in response["Content-Disposition"]
    assert response.content.decode().splitlines()[0].startswith("user,language_pair,from,to,active_seconds")
    assert "bilingual,en→ta,2025-03-03,2025-03-04,510,0.14,2,,,20.00,EUR,2.83" in response.content.decode()


def test_the_api_names_a_bad_date_in_json_even_when_csv_was_asked_for(worked, admin_user, api):
    url = reverse("api-campaign-time-report", kwargs={"campaign_id": worked.id})
    response = api(admin_user).get(url, {"from": "2025-02-30", "format": "csv"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "YYYY-MM-DD" in response.json()["from"][0]


def test_the_api_refuses_annotators(worked, api):
    url = reverse("api-campaign-time-report", kwargs={"campaign_id": worked.id})
    annotator = Judgment.objects.filter(annotator__username="other").first().annotator
    assert api(annotator).get(url).status_code == 403
    assert api(annotator).get(url, {"format": "csv"}).status_code == 403


# --- the activity ping ------------------------------------------------------------------------------------------


def test_the_ping_stores_one_row_per_minute(client, annotator, campaign, items):
    client.force_login(annotator)
    url = reverse("annotation:activity", kwargs={"campaign_id": campaign.id})
    assert client.post(url, {"item": str(items[0].id)}).status_code == 204
    assert client.post(url, {"item": str(items[0].id)}).status_code == 204  # the same minute: nothing new
    assert client.post(url, {"item": "not a number"}).status_code == 204
    pings = list(ActivityPing.objects.all())
    assert len(pings) <= 2  # two only if the minute turned between the posts
    assert pings[0].item_id == items[0].id and pings[0].minute.second == 0
    assert client.get(url).status_code == 405


def test_the_ping_needs_csrf(annotator, campaign):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    response = client.post(reverse("annotation:activity", kwargs={"campaign_id": campaign.id}))
    assert response.status_code == 403
    assert not ActivityPing.objects.exists()
