"""The rounds' API: POST training-runs/{id}/next-round/ and GET campaigns/{id}/lineage/ (docs/api.md, "Rounds")."""

from __future__ import annotations

import pytest

from annotation.models import JobStatus
from generation.models import GenerationJob
from tests.generation.round_chain import (
    campaign_with_items,
    evaluation,
    judge_all,
    next_round_job,
    plain_base_model,
    succeeded_export,
    succeeded_run,
)
from training.models import TrainingRun


@pytest.fixture
def first(db, tmp_path, admin_user):
    base = plain_base_model(tmp_path / "plain-model")
    campaign = campaign_with_items("Demo", ["p-1", "p-2"], created_by=admin_user)
    run, version = succeeded_run(base=base, export=succeeded_export(campaign), name="demo-dpo-1",
                                 adapters=tmp_path / "adapters")
    evaluation(base=base, version=None, scores={"sw": 50.0})
    evaluation(base=base, version=version, run=run, scores={"sw": 62.5})
    return campaign, run, version


def url(run) -> str:
    return f"/api/v1/training-runs/{run.pk}/next-round/"


def test_an_admin_starts_the_next_round_and_gets_the_job(api, admin_user, first):
    campaign, run, version = first
    response = api(admin_user).post(url(run), {"response_languages": ["ta", "hi"], "off_target": "drop"},
                                    format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    job = GenerationJob.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["training_run"] == run.pk and body["campaign"] is None
    assert body["campaign_name"] == "Demo — round 2" and body["off_target_policy"] == "drop"
    assert [g["label"] for g in body["generators"]] == ["demo-dpo-1", "plain"]
    assert body["progress"] == {"done": 0, "total": 8, "percent": 0.0}
    assert job.created_by == admin_user and job.source_campaign == campaign


def test_an_empty_body_takes_every_default(api, admin_user, first):
    _campaign, run, _version = first
    response = api(admin_user).post(url(run), {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["languages_per_prompt"] is None
    assert response.json()["response_languages"] == "campaign", "the language pairs of the round before"
    assert response.json()["progress"]["total"] == 2 * 1 * 2


@pytest.mark.parametrize(("body", "field"), [
    ({"against_parent": "perhaps"}, "against_parent"),
    ({"campaign_name": "Demo"}, "campaign"),
    ({"overlap": 0}, "overlap"),
    ({"prompts": {"items": []}}, "prompts"),
    ({"generators": [{"base_model": 1}]}, "generators"),
    ([1, 2], "body"),
])
def test_bad_input_is_a_400_naming_the_field(api, admin_user, first, body, field):
    _campaign, run, _version = first
    response = api(admin_user).post(url(run), body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert GenerationJob.objects.count() == 0


def test_a_run_that_did_not_succeed_is_refused(api, admin_user, first):
    _campaign, run, _version = first
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    response = api(admin_user).post(url(run), {}, format="json")
    assert response.status_code == 400 and "succeeded" in response.json()["training_run"][0]


def test_only_admins_may_start_a_round_or_read_a_lineage(api, annotator, first):
    campaign, run, _version = first
    assert api().post(url(run), {}, format="json").status_code == 401
    assert api(annotator).post(url(run), {}, format="json").status_code == 403
    assert api(annotator).get(f"/api/v1/campaigns/{campaign.pk}/lineage/").status_code == 403
    assert api(annotator).post("/api/v1/training-runs/999999/next-round/", {}, format="json").status_code == 403


def test_an_unknown_run_or_campaign_is_a_404(api, admin_user, db):
    assert api(admin_user).post("/api/v1/training-runs/999999/next-round/", {}, format="json").status_code == 404
    assert api(admin_user).get("/api/v1/campaigns/999999/lineage/").status_code == 404


def test_the_lineage_lists_the_rounds_with_deltas_and_rates(api, admin_user, first, make_annotator):
    campaign, run, version = first
    judge_all(campaign, [make_annotator(f"ta{n}", ["ta"], ["sw"]) for n in range(2)], wrong_language={"p-2": [0]})
    second = campaign_with_items("Demo — round 2", ["p-1:ta:g9"])
    job = next_round_job(run=run, campaign=second)
    response = api(admin_user).get(f"/api/v1/campaigns/{second.pk}/lineage/")
    assert response.status_code == 200
    body = response.json()
    assert body["campaign"] == second.pk and [r["number"] for r in body["rounds"]] == [1, 2]
    first_round, second_round = body["rounds"]
    assert first_round["campaign"] == {"id": campaign.pk, "name": "Demo"}
    assert first_round["training_run"] == {"id": run.pk, "kind": "dpo", "status": "succeeded"}
    assert first_round["model_version"]["name"] == "demo-dpo-1"
    assert first_round["next_job"] == {"id": job.pk, "status": "succeeded", "campaign": second.pk}
    comparison = first_round["comparison"]
    assert comparison["columns"] == [{"benchmark": "xcopa", "metric": "accuracy"}]
    assert comparison["languages"] == [{"language": "sw", "cells": [
        {"a": 50.0, "b": 62.5, "delta": 12.5, "verdict": "better"}]}]
    assert first_round["wrong_language"]["per_language"] == [{
        "language": "ta", "judged": 8, "flagged": 2, "flagged_share": 0.25, "candidates": 0, "off_target": 0,
        "off_target_share": None}]
    assert second_round["made_by_job"] == job.pk and second_round["training_run"] is None
