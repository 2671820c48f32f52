"""Human win rate: the pure win share with its bootstrap interval (hand-checked), and a campaign made from two runs'
open-ended outputs, judged by annotators, read back per language."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Campaign, Item
from annotation.services.judgments import judgment_submit
from crossfeed.errors import InvalidInput
from evaluation.services.winrate import winrate_campaign_create, winrate_summary
from evaluation.winrate import outcome, win_share
from tests.conftest import new_key
from tests.evaluation.conftest import output_record
from training.models import ModelVersion


def test_an_outcome_is_a_win_a_loss_or_half_for_a_tie():
    assert (outcome(2, 1), outcome(1, 2), outcome(1, 1)) == (1.0, 0.0, 0.5)


def test_the_win_share_counts_ties_as_half():
    # Items: (win, win), (tie,), (loss, win): (1 + 1 + 0.5 + 0 + 1) / 5 = 0.7
    result = win_share([[1, 1], [0.5], [0, 1]])
    assert result.share == pytest.approx(0.7)
    assert (result.items, result.judgments, result.wins, result.ties, result.losses) == (3, 5, 3, 1, 1)
    assert result.low <= result.share <= result.high
    # Resampling whole items: the extremes are all (tie) items -> 0.5, or all (win, win) -> 1.0.
    assert result.low >= 0.5 and result.high <= 1.0


def test_the_interval_narrows_with_more_items_and_is_reproducible():
    few = win_share([[1], [0]] * 5)
    many = win_share([[1], [0]] * 200)
    assert few.share == many.share == 0.5
    assert (many.high - many.low) < (few.high - few.low)
    assert win_share([[1], [0]] * 5) == few, "fixed seed"


def test_no_judgments_give_no_share():
    assert win_share([]).share is None and win_share([[]]).judgments == 0


@pytest.fixture
def two_runs(finished_run, plain_base):
    sft = ModelVersion.objects.create(name="tiny-sft", base_model=plain_base, kind="sft", adapter_path="/a")
    dpo = ModelVersion.objects.create(name="tiny-dpo", base_model=plain_base, kind="dpo", adapter_path="/b",
                                      parent=sft)
    a = finished_run(model_version=sft, benchmarks=["open-ended"], records=[
        output_record("open-ended", "ta", "oe-1", "Answer A one", expected="ta", input_text="Instruction one"),
        output_record("open-ended", "ta", "oe-2", "Same answer", expected="ta", input_text="Instruction two"),
        output_record("open-ended", "sw", "oe-1", "Jibu A", expected="sw", input_text="Maelekezo"),
        output_record("open-ended", "sw", "oe-3", "", expected="sw", input_text="Tupu"),
    ])
    b = finished_run(model_version=dpo, benchmarks=["open-ended"], records=[
        output_record("open-ended", "ta", "oe-1", "Answer B <b>one</b>", expected="ta", input_text="Instruction one"),
        output_record("open-ended", "ta", "oe-2", "Same answer", expected="ta", input_text="Instruction two"),
        output_record("open-ended", "sw", "oe-1", "Jibu B", expected="sw", input_text="Maelekezo"),
        output_record("open-ended", "sw", "oe-3", "Jibu", expected="sw", input_text="Tupu"),
    ])
    return a, b


def test_a_campaign_holds_one_item_per_prompt_with_both_answers(two_runs, admin_user):
    a, b = two_runs
    campaign, counts = winrate_campaign_create(run_a=a, run_b=b, name="sft vs dpo", overlap=2, created_by=admin_user)
    # ta oe-2: identical answers; sw oe-3: A's answer is empty. Left: ta oe-1 and sw oe-1.
    assert counts == {"items": 2, "identical": 1}
    items = {item.external_id: item for item in campaign.items.all()}
    assert set(items) == {f"winrate-{a.id}-{b.id}-open-ended-ta-oe-1", f"winrate-{a.id}-{b.id}-open-ended-sw-oe-1"}
    item = items[f"winrate-{a.id}-{b.id}-open-ended-ta-oe-1"]
    assert item.prompt_text == "Instruction one" and item.response_language_id == "ta"
    assert {r.model_name: r.text for r in item.responses.all()} == {"tiny-sft": "Answer A one",
                                                                   "tiny-dpo": "Answer B <b>one</b>"}
    assert campaign.overlap == 2 and "Rank the better answer 1" in campaign.guidelines


def test_the_same_model_twice_is_refused(two_runs, finished_run):
    a, _ = two_runs
    with pytest.raises(InvalidInput, match="two different"):
        winrate_campaign_create(run_a=a, run_b=finished_run(model_version=a.model_version), name="x")


def test_judgments_become_win_shares_per_language(two_runs, admin_user, make_annotator, client):
    a, b = two_runs
    campaign, _ = winrate_campaign_create(run_a=a, run_b=b, name="sft vs dpo", overlap=2, created_by=admin_user)
    tamils = [make_annotator(f"ta{n}", ["ta"]) for n in range(2)]
    item = Item.objects.get(campaign=campaign, response_language="ta")
    ids = {r.model_name: str(r.id) for r in item.responses.all()}
    # One annotator prefers B (dpo), the other calls it a tie: (1 + 0.5) / 2 = 0.75.
    judgment_submit(annotator=tamils[0], item_id=item.id, ranks={ids["tiny-dpo"]: 1, ids["tiny-sft"]: 2},
                    idempotency_key=new_key())
    judgment_submit(annotator=tamils[1], item_id=item.id, ranks={ids["tiny-dpo"]: 1, ids["tiny-sft"]: 1},
                    idempotency_key=new_key())
    summary = winrate_summary(campaign=campaign)
    rows = {row["language"]: row for row in summary["rows"]}
    assert rows["ta"]["result"].share == pytest.approx(0.75)
    assert (rows["ta"]["result"].wins, rows["ta"]["result"].ties, rows["ta"]["result"].losses) == (1, 1, 0)
    assert rows["sw"]["result"].share is None and rows["sw"]["unjudged"] == 1
    assert summary["overall"].judgments == 2 and summary["unjudged"] == 1

    client.force_login(admin_user)
    page = client.get(reverse("evaluation:winrate", args=[campaign.id])).content.decode()
    assert "Win rate of tiny-dpo against tiny-sft" in page and "75%" in page
    assert client.get(reverse("evaluation:winrate", args=[Campaign.objects.create(name="other").id])
                      ).status_code == 404


def test_staff_create_the_campaign_from_the_comparison_page(two_runs, admin_user, annotator, client):
    a, b = two_runs
    client.force_login(admin_user)
    page = client.get(reverse("evaluation:compare"), {"a": a.id, "b": b.id}).content.decode()
    assert reverse("evaluation:winrate_create") in page
    response = client.post(reverse("evaluation:winrate_create"),
                           {"a": a.id, "b": b.id, "name": "people", "overlap": 3})
    campaign = Campaign.objects.get(name="people")
    assert response["Location"] == reverse("evaluation:winrate", args=[campaign.id])
    client.force_login(annotator)
    assert client.post(reverse("evaluation:winrate_create"), {"a": a.id, "b": b.id, "name": "again",
                                                              "overlap": 3}).status_code == 403
