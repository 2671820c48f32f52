"""Quality control end to end through the real services: gold items and states, qualification gating, exclusions
and adjudication in the exports, the API's annotator list and exclusions, and the bad input of issue 15."""

from __future__ import annotations

import json
import random

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from annotation.models import (
    Adjudication,
    AnnotatorStanding,
    Campaign,
    Exclusion,
    Item,
    Judgment,
    QualificationResult,
)
from annotation.selectors import campaign_progress, language_pair_rows
from annotation.services.assignment import lease_next
from annotation.services.campaigns import campaign_create, campaign_update
from annotation.services.exports import export_create, export_folder, export_run
from annotation.services.judgments import judgment_submit
from annotation.services.quality import REVIEWER_GROUP, adjudication_record, exclusion_create
from crossfeed.errors import InvalidInput
from tests.conftest import item_line, new_key, ranks_for


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def gold_line(external_id: str, *, best=(0,), wrong=(), prompt_lang="sw", qualification=False, **kwargs) -> dict:
    line = {**item_line(external_id, prompt_lang=prompt_lang, **kwargs),
            "gold": {"best": list(best), "wrong_language": list(wrong)}}
    if qualification:
        line["qualification"] = True
    return line


def judge(user, item, order=None, flags=None):
    return judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item, order), flags=flags,
                           idempotency_key=new_key())


def run_export(campaign, admin_user, **filters):
    export = export_create(campaign=campaign, created_by=admin_user, enqueue=False, test_fraction=0.0, **filters)
    return export_run(export_id=export.id)


RIGHT, WRONG = [1, 2, 3], [3, 2, 1]  # ranks by position: the expected best (position 0) first, or last


# --- gold items -------------------------------------------------------------------------------------------------


@pytest.fixture
def gold_campaign(admin_user, import_items):
    campaign = campaign_create(name="Gold campaign", created_by=admin_user, overlap=3, gold_min_seen=2,
                               gold_warn_below=0.7, gold_exclude_below=0.5)
    import_items(campaign, [item_line(f"t-{n}") for n in range(3)]
                 + [item_line(f"e-{n}", prompt_lang="en", pivot=False) for n in range(2)]
                 + [gold_line(f"g-{n}") for n in range(3)])
    return campaign


def test_gold_items_are_never_full_and_count_toward_no_progress(gold_campaign):
    gold = Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.GOLD)
    assert gold.count() == 3 and {item.target for item in gold} == {32_767}
    assert gold.first().gold == {"best": [0], "wrong_language": [], "tolerance": 0}
    assert campaign_progress(gold_campaign)["items"] == 5
    assert sum(row["items"] for row in language_pair_rows(gold_campaign)) == 5
    # A new k leaves them alone.
    campaign_update(campaign=gold_campaign, overlap=4)
    assert {item.target for item in gold.all()} == {32_767}


def test_an_annotator_failing_gold_is_warned_then_excluded_and_leaves_the_next_export(
        gold_campaign, admin_user, make_annotator):
    careless, *careful = [make_annotator(f"ta{n}", ["ta"], ["sw", "en"]) for n in range(3)]
    tasks = list(Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.TASK).order_by("id"))
    for item in tasks:
        for user in careful:
            judge(user, item, RIGHT)
        judge(careless, item, WRONG)
    before = run_export(gold_campaign, admin_user)
    rows = read_jsonl(export_folder(before) / "train.jsonl")
    assert {(row["votes_for"], row["votes_against"]) for row in rows} == {(2, 1)}
    assert before.exclusions == []

    g0, g1, g2 = Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.GOLD).order_by("id")
    judge(careless, g0, RIGHT)
    standing = AnnotatorStanding.objects.get(annotator=careless)
    assert (standing.gold_seen, standing.gold_correct, standing.state) == (1, 1, "ok")  # below gold_min_seen
    judge(careless, g1, WRONG)
    standing.refresh_from_db()
    assert (standing.gold_seen, standing.gold_correct, standing.state) == (2, 1, "warned")
    assert standing.state_changed_at is not None and "50% (1 of 2)" in standing.state_reason
    judge(careless, g2, WRONG)
    standing.refresh_from_db()
    assert (standing.gold_seen, standing.gold_correct, standing.state) == (3, 1, "excluded")
    assert standing.state_reason == "gold accuracy 33% (1 of 3) is below the exclusion threshold 50%"
    assert (standing.prompt_language_id, standing.response_language_id) == ("sw", "ta")

    after = run_export(gold_campaign, admin_user)
    rows = read_jsonl(export_folder(after) / "train.jsonl")
    by_pair = {(row["prompt_language"], row["n_judgments"], row["votes_against"]) for row in rows}
    # sw→ta: the careless annotator's votes are gone; en→ta, a pair gold never checked, keeps them.
    assert by_pair == {("sw", 2, 0), ("en", 3, 1)}
    assert not any(row["item"].startswith("g-") for row in rows)  # gold is never exported
    assert after.exclusions == [{
        "source": "gold", "user": "ta0", "user_id": careless.id, "prompt_language": "sw", "response_language": "ta",
        "reason": standing.state_reason, "judgments": 3}]
    card = (export_folder(after) / "README.md").read_text()
    assert "1 by failed gold checks" in card and "3 judgment(s) left out" in card and "ta0" not in card


def test_an_excluded_annotator_gets_no_more_items_of_the_pair(gold_campaign, make_annotator):
    careless = make_annotator("careless", ["ta"], ["sw", "en"])
    AnnotatorStanding.objects.create(campaign=gold_campaign, annotator=careless, prompt_language_id="sw",
                                     response_language_id="ta", state="excluded")
    leased = set()
    while (lease := lease_next(campaign=gold_campaign, annotator=careless)) is not None:
        item = Item.objects.get(pk=lease.item_id)
        leased.add((item.prompt_language_id, item.kind))
        judge(careless, item)
    assert leased == {("en", "task")}


def test_gold_is_mixed_in_at_the_campaign_rate_only_while_there_is_work(admin_user, import_items, make_annotator):
    campaign = campaign_create(name="Mixed", created_by=admin_user, overlap=1, gold_rate=0.5)
    import_items(campaign, [item_line(f"t-{n}") for n in range(20)] + [gold_line(f"g-{n}") for n in range(20)])
    annotator = make_annotator("mixer", ["ta"], ["sw"])
    random.seed(3)
    kinds = []
    while (lease := lease_next(campaign=campaign, annotator=annotator)) is not None:
        item = Item.objects.get(pk=lease.item_id)
        kinds.append(item.kind)
        judge(annotator, item)
    assert kinds.count("task") == 20
    assert 4 <= kinds.count("gold") <= 16  # about one in two, by chance
    assert kinds[-1] == "task"  # once the work is done, no more checks


def test_gold_accuracy_over_a_period_for_the_time_report(gold_campaign, make_annotator):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.competence import gold_accuracy_between

    annotator = make_annotator("timed", ["ta"], ["sw"])
    g0, g1, g2 = Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.GOLD).order_by("id")
    judge(annotator, g0, RIGHT)
    judge(annotator, g1, WRONG)
    judge(annotator, g2, RIGHT)
    Judgment.objects.filter(item=g2).update(updated_at=timezone.now() - timedelta(days=3))
    now = timezone.now()
    period = gold_accuracy_between(campaign=gold_campaign, start=now - timedelta(days=1), end=now + timedelta(days=1))
    assert period == {(annotator.id, ("sw", "ta")): {"gold_seen": 2, "gold_accuracy": 0.5}}


def test_no_gold_is_handed_out_at_rate_zero(gold_campaign, make_annotator):
    annotator = make_annotator("plain", ["ta"], ["sw", "en"])
    kinds = set()
    while (lease := lease_next(campaign=gold_campaign, annotator=annotator)) is not None:
        item = Item.objects.get(pk=lease.item_id)
        kinds.add(item.kind)
        judge(annotator, item)
    assert kinds == {"task"}


# --- qualification ----------------------------------------------------------------------------------------------


@pytest.fixture
def gated(admin_user, import_items):
    campaign = campaign_create(name="Gated", created_by=admin_user, overlap=2, qualification_pass_mark=0.5)
    import_items(campaign, [item_line(f"t-{n}") for n in range(2)]
                 + [gold_line(f"q-{n}", qualification=True) for n in range(2)]
                 + [item_line("en-0", prompt_lang="en", pivot=False)])
    campaign.refresh_from_db()
    return campaign


def lease_item(campaign, user) -> Item | None:
    lease = lease_next(campaign=campaign, annotator=user)
    return None if lease is None else Item.objects.get(pk=lease.item_id)


def test_qualification_gates_leasing(gated, make_annotator):
    assert gated.qualification_pairs == [["sw", "ta"]]
    passing = make_annotator("passing", ["ta"], ["sw"])
    first = lease_item(gated, passing)
    assert first.kind == "qualification"
    judge(passing, first, RIGHT)
    second = lease_item(gated, passing)
    assert second.kind == "qualification" and second.id != first.id  # the set first, whole
    assert not QualificationResult.objects.exists()
    judge(passing, second, WRONG)
    result = QualificationResult.objects.get(annotator=passing)
    assert (result.passed, result.correct, result.answered, result.pass_mark) == (True, 1, 2, 0.5)
    assert lease_item(gated, passing).kind == "task"  # qualified: real items of the pair


def test_a_failed_qualification_keeps_the_pair_closed(gated, make_annotator):
    failing = make_annotator("failing", ["ta"], ["sw", "en"])
    while (item := lease_item(gated, failing)) is not None and item.kind == "qualification":
        judge(failing, item, WRONG)
    assert QualificationResult.objects.get(annotator=failing).passed is False
    # Only the ungated en→ta item is left for them; no sw→ta item to rank.
    assert (item.prompt_language_id, item.kind) == ("en", "task")
    judge(failing, item)
    assert lease_item(gated, failing) is None
    assert not Judgment.objects.filter(annotator=failing, item__external_id__startswith="t-").exists()


# --- exclusions by an admin -------------------------------------------------------------------------------------


def test_an_admin_exclusion_drops_judgments_from_a_date_on_and_is_recorded(judged, admin_user):
    tamil = Judgment.objects.filter(item__response_language="ta").order_by("annotator_id", "id")
    annotator = tamil.first().annotator
    own = list(tamil.filter(annotator=annotator))
    # Their first two judgments predate the exclusion's date; the third does not.
    old = own[0].created_at.replace(year=2020)
    Judgment.objects.filter(pk__in=[own[0].pk, own[1].pk]).update(created_at=old)
    since = old.replace(year=2021)
    exclusion, created = exclusion_create(campaign=judged, user=annotator.username, reason="pasted answers",
                                          since=since.isoformat(), created_by=admin_user)
    assert created and exclusion.since == since and exclusion.created_by == admin_user
    export = run_export(judged, admin_user, languages=["ta"], min_judgments=1)
    rows = read_jsonl(export_folder(export) / "train.jsonl")
    assert sorted({(row["item"], row["n_judgments"]) for row in rows}) == [("t-0", 2), ("t-1", 2), ("t-2", 1)]
    assert export.exclusions == [{"source": "admin", "user": annotator.username, "user_id": annotator.id,
                                  "since": since.isoformat(), "reason": "pasted answers", "judgments": 1}]
    assert "1 by an admin" in (export_folder(export) / "README.md").read_text()


def test_an_excluded_annotator_gets_no_more_items_of_the_campaign(campaign, items, annotator, admin_user):
    judge(annotator, items[0])
    exclusion_create(campaign=campaign, user=annotator.id, reason="left the project", created_by=admin_user)
    assert lease_next(campaign=campaign, annotator=annotator) is None


def test_an_exclusion_of_someone_who_never_annotated_is_refused(campaign, items, other_annotator, admin_user):
    with pytest.raises(InvalidInput) as refused:
        exclusion_create(campaign=campaign, user="tamil2", reason="?", created_by=admin_user)
    assert refused.value.field_errors["user"] == [
        "'tamil2' has no judgment in campaign 'Test campaign': there is nothing of theirs to exclude"]
    assert not Exclusion.objects.exists()


# --- adjudication -----------------------------------------------------------------------------------------------


@pytest.fixture
def reviewer(make_annotator):
    user = make_annotator("reviewer", ["ta"], ["sw"])
    user.groups.add(Group.objects.get(name=REVIEWER_GROUP))
    return user


def test_adjudication_overrides_the_consensus_in_the_export(judged, admin_user, reviewer):
    item = Item.objects.get(external_id="t-0")
    ids = list(item.responses.order_by("position").values_list("id", flat=True))
    # Both annotators ranked position 0 first; the reviewer puts position 2 first and 0 last.
    adjudication_record(item=item, reviewer=reviewer, ranks={str(ids[0]): 3, str(ids[1]): 2, str(ids[2]): 1},
                        note="0 and 1 answer another question")
    export = run_export(judged, admin_user, languages=["ta"], pairs="best_vs_rest", min_agreement=1.0)
    rows = [row for row in read_jsonl(export_folder(export) / "train.jsonl") if row["item"] == "t-0"]
    assert [(row["chosen"][0]["content"], row["rejected"][0]["content"], row["votes_for"], row["votes_against"])
            for row in rows] == [("t-0 response 2", "t-0 response 1", 0, 2),
                                 ("t-0 response 2", "t-0 response 0", 0, 2)]
    assert export.adjudicated == 1
    assert "1 item(s) were adjudicated" in (export_folder(export) / "README.md").read_text()
    sft = run_export(judged, admin_user, languages=["ta"], kind="sft")
    best = {row["item"]: row["messages"][1]["content"] for row in read_jsonl(export_folder(sft) / "train.jsonl")}
    assert best["t-0"] == "t-0 response 2" and best["t-1"] == "t-1 response 0"


def test_a_response_marked_wrong_language_is_never_chosen(judged, admin_user, reviewer):
    item = Item.objects.get(external_id="t-1")
    ids = list(item.responses.order_by("position").values_list("id", flat=True))
    adjudication_record(item=item, reviewer=reviewer, ranks={str(ids[0]): 1, str(ids[1]): 2, str(ids[2]): 3},
                        wrong_language=[ids[0]])
    export = run_export(judged, admin_user, languages=["ta"])
    rows = [row for row in read_jsonl(export_folder(export) / "train.jsonl") if row["item"] == "t-1"]
    assert [(row["chosen"][0]["content"], row["rejected"][0]["content"]) for row in rows] == [
        ("t-1 response 1", "t-1 response 2")]


def test_a_final_ranking_must_rank_every_response(judged, reviewer):
    item = Item.objects.get(external_id="t-2")
    first = item.responses.order_by("position").first()
    with pytest.raises(InvalidInput) as refused:
        adjudication_record(item=item, reviewer=reviewer, ranks={str(first.id): 1}, wrong_language=[999_999])
    assert "no rank for response(s)" in refused.value.field_errors["ranks"][0]
    assert refused.value.field_errors["wrong_language"]
    assert not Adjudication.objects.exists()


# --- weights ----------------------------------------------------------------------------------------------------


def test_the_weight_column_follows_reliability(campaign, admin_user, import_items, make_annotator):
    campaign_update(campaign=campaign, overlap=3)
    import_items(campaign, [item_line(f"w-{n}") for n in range(6)])
    good = [make_annotator(f"good{n}", ["ta"], ["sw"]) for n in range(2)]
    noisy = make_annotator("noisy", ["ta"], ["sw"])
    for number, item in enumerate(Item.objects.filter(campaign=campaign).order_by("id")):
        for user in good:
            judge(user, item, RIGHT)
        judge(noisy, item, WRONG if number % 2 else RIGHT)
    export = run_export(campaign, admin_user, weights=True)
    rows = read_jsonl(export_folder(export) / "train.jsonl")
    assert list(rows[0])[-1] == "weight"
    unanimous = [row["weight"] for row in rows if row["votes_against"] == 0]
    split = [row["weight"] for row in rows if row["votes_against"] == 1]
    assert set(unanimous) == {1.0}
    # 2–1 with the dissent from the less reliable annotator: above the plain margin of 1/3, below 1.
    assert split and all(1 / 3 < weight < 1 for weight in split)
    assert "`weight`" in (export_folder(export) / "README.md").read_text()


def test_weights_are_refused_for_sft(judged, admin_user):
    with pytest.raises(InvalidInput) as refused:
        export_create(campaign=judged, created_by=admin_user, kind="sft", weights=True, enqueue=False)
    assert "weights" in refused.value.field_errors


# --- the API ----------------------------------------------------------------------------------------------------


def test_the_annotator_list(gold_campaign, make_annotator, api, admin_user):
    annotator = make_annotator("listed", ["ta"], ["sw"])
    tasks = Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.TASK, prompt_language="sw").order_by("id")
    g0, g1 = Item.objects.filter(campaign=gold_campaign, kind=Item.Kind.GOLD).order_by("id")[:2]
    judgment_submit(annotator=annotator, item_id=tasks[0].id, ranks=ranks_for(tasks[0]), seconds_spent=40,
                    idempotency_key=new_key())
    judge(annotator, g0, RIGHT)
    judge(annotator, g1, WRONG)
    response = api(admin_user).get(reverse("api-campaign-annotators", args=[gold_campaign.id]))
    assert response.status_code == 200, response.content
    [row] = response.json()
    assert (row["user"], row["user_id"], row["excluded"]) == ("listed", annotator.id, None)
    assert row["active_seconds"] == 40
    [pair] = row["language_pairs"]
    assert {key: pair[key] for key in ("pair", "judgments", "gold_seen", "gold_accuracy", "state")} == {
        "pair": "sw→ta", "judgments": 1, "gold_seen": 2, "gold_accuracy": 0.5, "state": "warned"}


def test_the_exclusion_endpoint(campaign, items, annotator, api, admin_user):
    judge(annotator, items[0])
    client = api(admin_user)
    url = reverse("api-campaign-exclusions", args=[campaign.id])
    response = client.post(url, {"user": annotator.id, "reason": "careless", "since": "2026-03-01"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["user"], body["reason"], body["since"][:10]) == ("tamil1", "careless", "2026-03-01")
    again = client.post(url, {"user": "tamil1", "reason": "every judgment after all"}, format="json")
    assert again.status_code == 200 and again.json()["since"] is None
    assert Exclusion.objects.get().reason == "every judgment after all"


@pytest.mark.parametrize("body, field, message", [
    ({"user": "tamil2", "reason": "x"}, "user", "has no judgment in campaign"),
    ({"user": "nobody", "reason": "x"}, "user", "no user 'nobody'"),
    ({"user": "tamil1", "reason": ""}, "reason", "required"),
    ({"user": "tamil1", "reason": "x", "since": "last week"}, "since", "a date"),
])
def test_bad_exclusions_are_400_and_store_nothing(campaign, items, annotator, other_annotator, api, admin_user,
                                                  body, field, message):
    judge(annotator, items[0])
    response = api(admin_user).post(reverse("api-campaign-exclusions", args=[campaign.id]), body, format="json")
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not Exclusion.objects.exists()


@pytest.mark.parametrize("settings_, field", [
    ({"gold_rate": 0.9}, "gold_rate"),
    ({"gold_rate": -0.1}, "gold_rate"),
    ({"gold_warn_below": 1.5}, "gold_warn_below"),
    ({"gold_warn_below": 0.4, "gold_exclude_below": 0.6}, "gold_exclude_below"),
    ({"gold_min_seen": 0}, "gold_min_seen"),
    ({"qualification_pass_mark": 2}, "qualification_pass_mark"),
])
def test_thresholds_out_of_range_are_400_and_store_nothing(api, admin_user, settings_, field):
    response = api(admin_user).post(reverse("api-campaigns"), {"name": "Thresholds", **settings_}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Campaign.objects.filter(name="Thresholds").exists()


def test_thresholds_are_checked_on_update_too(campaign):
    with pytest.raises(InvalidInput) as refused:
        campaign_update(campaign=campaign, gold_exclude_below=0.9)
    assert "at most the warning threshold" in refused.value.field_errors["gold_exclude_below"][0]
    campaign.refresh_from_db()
    assert campaign.gold_exclude_below == 0.5


def test_gold_naming_responses_the_item_does_not_have_is_400_with_line_and_field(campaign, api, admin_user):
    lines = [item_line("fine-0"), gold_line("bad-1", best=[5])]
    response = api(admin_user).post(reverse("api-campaign-items", args=[campaign.id]), lines, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 2, "field": "gold.best", "message": (
        "the item has no response 5: it has 3 responses, indices 0 to 2")}]
    assert not Item.objects.filter(campaign=campaign).exists()


def test_gold_asking_for_a_flag_the_campaign_lacks_is_refused(admin_user, api):
    campaign = campaign_create(name="No flags", created_by=admin_user, flag_vocabulary=["unsafe"])
    response = api(admin_user).post(reverse("api-campaign-items", args=[campaign.id]),
                                    [gold_line("g-0", best=[], wrong=[1])], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "gold.wrong_language"
    assert not Item.objects.filter(campaign=campaign).exists()
