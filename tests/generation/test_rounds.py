"""Rounds: next_round_create (its checks, its generators, its campaign's default name) and the lineage of rounds read
back from the links (a hand-built chain of two rounds with evaluation results and flagged judgments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Campaign, JobStatus
from crossfeed.errors import InvalidInput
from generation.models import GenerationJob
from generation.services.lineage import campaign_chain, lineage, round_number
from generation.services.rounds import next_round_create
from tests.generation.round_chain import (
    campaign_with_items,
    detected,
    evaluation,
    judge_all,
    next_round_job,
    plain_base_model,
    succeeded_export,
    succeeded_run,
)
from training.models import TrainingRun


@pytest.fixture
def base(db, tmp_path):
    return plain_base_model(tmp_path / "plain-model")


@pytest.fixture
def first(base, tmp_path, admin_user):
    """Round 1: the demo-like campaign, its export, a DPO run on it and the version it registered."""
    campaign = campaign_with_items("Demo", ["p-1", "p-2"], created_by=admin_user)
    run, version = succeeded_run(base=base, export=succeeded_export(campaign), name="demo-dpo-1",
                                 adapters=tmp_path / "adapters")
    return campaign, run, version


@pytest.fixture
def chain(first, base, tmp_path, make_annotator):
    """Two rounds: round 1 (above), whose next-round job made campaign 2, judged with wrong-language flags and
    trained on again (on top of round 1's version); evaluations of the base model and both versions."""
    campaign1, run1, version1 = first
    annotators = [make_annotator(f"ta{n}", ["ta"], ["sw"]) for n in range(2)]
    judge_all(campaign1, annotators, wrong_language={"p-1": [1]})
    job1 = next_round_job(run=run1, campaign=None, status=JobStatus.RUNNING, name="Demo — round 2")
    campaign2 = campaign_with_items("Demo — round 2", ["p-1:ta:g1", "p-2:ta:g1"],
                                    responses=[["Jibu la kwanza", "First answer"], ["பதில்", "இன்னொரு பதில்"]])
    GenerationJob.objects.filter(pk=job1.pk).update(campaign=campaign2, status=JobStatus.SUCCEEDED)
    detected(campaign2, ["sw", "en", "ta", "ta"])
    judge_all(campaign2, annotators, wrong_language={"p-1:ta:g1": [0, 1]})
    run2, version2 = succeeded_run(base=base, export=succeeded_export(campaign2), name="demo-dpo-2",
                                   adapters=tmp_path / "adapters", parent=version1)
    evaluation(base=base, version=None, scores={"sw": 50.0, "ta": 75.0})
    evaluation(base=base, version=version1, run=run1, scores={"sw": 75.0, "ta": 50.0})
    evaluation(base=base, version=version2, run=run2, scores={"sw": 80.0, "ta": 60.0})
    job1.refresh_from_db()
    return {"campaigns": (campaign1, campaign2), "runs": (run1, run2), "versions": (version1, version2),
            "job": job1}


# --- next_round_create ---------------------------------------------------------------------------------------------


def test_the_next_round_generates_with_the_new_version_beside_the_bare_base_model(first, admin_user):
    campaign, run, version = first
    job = next_round_create(run=run, created_by=admin_user)
    assert [{key: g[key] for key in g if key != "label"} for g in job.generators] == [
        {"model_version": version.pk}, {"base_model": run.base_model_id}]
    assert [g["label"] for g in job.generators] == ["demo-dpo-1", "plain"]
    assert job.training_run == run and job.source_campaign == campaign and job.prompt_source["campaign"] == campaign.pk
    assert job.campaign is None and job.campaign_name == "Demo — round 2"
    assert job.campaign_overlap == campaign.overlap and job.status == JobStatus.QUEUED
    # The same language pairs as the round before (its items are sw -> ta), not all 29 other feedback languages.
    assert job.response_languages == "campaign"
    assert job.progress_total == 2 * 1 * 2, "2 prompts × their 1 response language × 2 generators"
    prompts = [json.loads(line) for line in (Path(job.output_dir) / "prompts.jsonl").read_text().splitlines()]
    assert [p["response_languages"] for p in prompts] == [["ta"], ["ta"]]


def test_the_next_round_of_a_version_with_a_parent_generates_beside_the_parent(chain, admin_user):
    run2 = chain["runs"][1]
    version1, version2 = chain["versions"]
    job = next_round_create(run=run2, languages_per_prompt=1, created_by=admin_user)
    assert [g.get("model_version") for g in job.generators] == [version2.pk, version1.pk]
    alone = next_round_create(run=run2, against_parent=False, languages_per_prompt=1, campaign_name="Alone")
    assert [g.get("model_version") for g in alone.generators] == [version2.pk]


def test_the_default_name_counts_the_rounds_and_never_takes_a_name_in_use(chain):
    run2 = chain["runs"][1]
    assert round_number(chain["campaigns"][1]) == 2
    job = next_round_create(run=run2, languages_per_prompt=1)
    assert job.campaign_name == "Demo — round 3", "named after the first campaign, with the next round's number"
    again = next_round_create(run=run2, languages_per_prompt=1)
    assert again.campaign_name == "Demo — round 3 (2)", "the first job will make 'Demo — round 3'"
    given = next_round_create(run=run2, languages_per_prompt=1, campaign_name="  My round  ", overlap=5)
    assert given.campaign_name == "My round" and given.campaign_overlap == 5


def test_the_prompts_can_come_from_another_prompt_set(first):
    _campaign, run, _version = first
    items = [{"external_id": "q1", "text": "Habari gani?", "language": "sw"}]
    job = next_round_create(run=run, prompts={"items": items}, response_languages=["ta", "hi"])
    assert job.prompt_source == {"items": 1} and job.source_campaign is None
    assert job.progress_total == 1 * 2 * 2


@pytest.mark.parametrize(("change", "arguments", "field"), [
    ("running", {}, "training_run"),
    ("no_version", {}, "training_run"),
    ("uploaded_file", {}, "prompts"),
    (None, {"against_parent": "yes"}, "against_parent"),
    (None, {"campaign_name": "Demo"}, "campaign"),
    (None, {"campaign_name": 7}, "campaign_name"),
    (None, {"prompts": {"campaign": 999_999}}, "prompts"),
    (None, {"prompts": {"items": []}}, "prompts"),
    (None, {"response_languages": ["xx-unknown"]}, "response_languages"),
    (None, {"off_target": "maybe"}, "off_target"),
    (None, {"samples_per_generator": 0}, "samples_per_generator"),
    (None, {"params": {"temperature": 9}}, "params"),
])
def test_every_bad_input_is_refused_with_its_field_and_nothing_is_stored(first, change, arguments, field):
    _campaign, run, version = first
    if change == "running":
        TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    elif change == "no_version":
        version.delete()
    elif change == "uploaded_file":
        TrainingRun.objects.filter(pk=run.pk).update(export=None, sft_file="/tmp/sft.jsonl")
    run = TrainingRun.objects.get(pk=run.pk)
    with pytest.raises(InvalidInput) as raised:
        next_round_create(run=run, **arguments)
    assert raised.value.field == field, raised.value.message
    assert GenerationJob.objects.count() == 0 and Campaign.objects.count() == 1


# --- lineage -----------------------------------------------------------------------------------------------------


def test_the_lineage_is_the_same_chain_from_either_campaign(chain):
    campaign1, campaign2 = chain["campaigns"]
    assert [c.pk for c in campaign_chain(campaign1)] == [campaign1.pk, campaign2.pk]
    assert [c.pk for c in campaign_chain(campaign2)] == [campaign1.pk, campaign2.pk]
    assert [r.campaign.pk for r in lineage(campaign=campaign1)] == [campaign1.pk, campaign2.pk]


def test_each_round_links_export_run_version_evaluations_and_the_job_of_the_next_campaign(chain):
    campaign1, campaign2 = chain["campaigns"]
    run1, run2 = chain["runs"]
    version1, version2 = chain["versions"]
    first, second = lineage(campaign=campaign2)
    assert (first.number, second.number) == (1, 2)
    assert first.made_by is None and first.next_job == chain["job"] and first.next_campaign_id == campaign2.pk
    assert first.training_run == run1 and first.model_version == version1
    assert [e.campaign_id for e in first.exports] == [campaign1.pk]
    assert [e.model_version_id for e in first.evaluation_runs] == [version1.pk]
    assert second.made_by == chain["job"] and second.next_job is None
    assert second.training_run == run2 and second.model_version == version2


def test_the_deltas_compare_each_version_with_what_it_was_trained_from(chain):
    first, second = lineage(campaign=chain["campaigns"][0])
    # Round 1: version 1 against the bare base model (sw 50 -> 75, ta 75 -> 50).
    assert first.baseline_run.model_version_id is None and first.evaluated_run.model_version == chain["versions"][0]
    cells = {row["language"]["code"]: row["cells"][0] for row in first.comparison["rows"]}
    assert (cells["sw"]["delta"]["value"], cells["sw"]["delta"]["verdict"]) == (25.0, "better")
    assert (cells["ta"]["delta"]["value"], cells["ta"]["delta"]["verdict"]) == (-25.0, "worse")
    # Round 2: version 2 against its parent, version 1 (sw 75 -> 80, ta 50 -> 60).
    assert second.baseline_run.model_version == chain["versions"][0]
    cells = {row["language"]["code"]: row["cells"][0] for row in second.comparison["rows"]}
    assert cells["sw"]["delta"]["value"] == pytest.approx(5.0) and cells["ta"]["delta"]["value"] == pytest.approx(10.0)


def test_the_wrong_language_rates_count_flags_per_response_language_and_machine_detections(chain):
    first, second = lineage(campaign=chain["campaigns"][0])
    # Round 1: 2 items × 2 responses × 2 annotators = 8 judged responses; each annotator flagged 1 (p-1's second).
    [tamil] = first.languages
    assert (tamil.language, tamil.judged, tamil.flagged, tamil.flagged_share) == ("ta", 8, 2, 0.25)
    assert tamil.candidates == 0 and tamil.off_target_share is None, "imported responses carry no detection"
    # Round 2: both annotators flagged both responses of the first item: 4 of 8. The machine found 2 of the 4
    # candidates in another language than Tamil (Swahili and English).
    [tamil] = second.languages
    assert (tamil.judged, tamil.flagged, tamil.flagged_percent) == (8, 4, 50.0)
    assert (tamil.candidates, tamil.off_target, tamil.off_target_percent) == (4, 2, 50.0)
    assert second.flagged_share == 0.5 and second.off_target_share == 0.5
    rows = {row["code"]: row for row in second.language_table()}
    assert set(rows) == {"sw", "ta"} and rows["ta"]["rates"] == tamil and rows["sw"]["rates"] is None


def test_a_lone_campaign_is_one_round(db, admin_user):
    campaign = campaign_with_items("Alone", ["a-1"], created_by=admin_user)
    [only] = lineage(campaign=campaign)
    assert only.number == 1 and only.training_run is None and only.next_job is None and only.comparison is None


def test_the_lineage_costs_the_same_queries_whatever_the_number_of_languages_and_judgments(chain, import_items,
                                                                                          make_annotator):
    campaign2 = chain["campaigns"][1]
    with CaptureQueriesContext(connection) as before:
        lineage(campaign=campaign2)
    # More response languages, items and judgments in round 2, and more evaluated languages.
    campaign_more = campaign2
    lines = [{"external_id": f"x-{lang}", "prompt": {"text": "Eleza.", "language": "sw"},
              "responses": [{"text": f"{lang} a", "language": lang}, {"text": f"{lang} b", "language": lang}]}
             for lang in ("hi", "bn", "ar", "fr")]
    import_items(campaign_more, lines)
    readers = [make_annotator(f"multi{n}", ["hi", "bn", "ar", "fr"], ["sw"]) for n in range(2)]
    judge_all(campaign_more, readers, prefix="x-")
    run = chain["runs"][1]
    evaluation(base=run.base_model, version=chain["versions"][1], run=run,
               scores=dict.fromkeys(("hi", "bn", "ar", "fr", "sw", "ta"), 10.0))
    with CaptureQueriesContext(connection) as after:
        rounds = lineage(campaign=campaign2)
    assert len(rounds[1].languages) == 5
    assert len(after.captured_queries) == len(before.captured_queries), [q["sql"] for q in after.captured_queries]
