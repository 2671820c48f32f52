"""REST API v1 of rounds (docs/api.md, "Rounds"): "Next round" on a succeeded training run, and the lineage of rounds
of a campaign. Admins only: a round spends accelerator hours, and its lineage reads every annotator's flags. Thin:
check the body's shape, call a service, serialise."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from crossfeed.permissions import ModelPermissions
from generation.models import GenerationJob
from generation.services.jobs import generation_job_payload
from generation.services.lineage import Round, lineage
from generation.services.rounds import next_round_create
from training.models import TrainingRun


class NextRoundInputSerializer(serializers.Serializer):
    prompts = serializers.JSONField(required=False, allow_null=True, help_text=(
        '{"campaign": id} or {"items": [{external_id, text, language, pivot?}]}; default: the prompts of the '
        "campaign the run was trained on"))
    against_parent = serializers.BooleanField(required=False, default=True, help_text=(
        "also generate with what the version was trained from (its parent version, or the bare base model)"))
    response_languages = serializers.JSONField(required=False, allow_null=True)
    languages_per_prompt = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=200)
    samples_per_generator = serializers.IntegerField(required=False, default=1, min_value=1, max_value=16)
    params = serializers.JSONField(required=False, allow_null=True)
    campaign_name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="", help_text=(
        'default: "<first campaign> — round N"'))
    overlap = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=20)
    off_target = serializers.ChoiceField(choices=GenerationJob.OffTarget.values, required=False, default="keep")


class NextRound(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("generation.add_generationjob", "training.view_trainingrun")}

    @extend_schema(request=NextRoundInputSerializer,
                   responses={201: OpenApiResponse(description="the generation job, as GET generation-jobs/{id}/"),
                              400: OpenApiResponse(description="errors by field")})
    def post(self, request, run_id: int):
        run = get_object_or_404(TrainingRun.objects.prefetch_related("versions"), pk=run_id)
        body = request.data if request.data is not None else {}
        if not isinstance(body, dict):
            raise ValidationError({"body": ["expected a JSON object"]})
        unknown = sorted(set(body) - set(NextRoundInputSerializer().fields))
        if unknown:
            raise ValidationError({str(unknown[0])[:40]: ["unknown field"]})
        serializer = NextRoundInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        job = next_round_create(run=run, created_by=request.user, **serializer.validated_data)
        return Response(generation_job_payload(job), status=status.HTTP_201_CREATED)


class CampaignLineage(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("generation.view_generationjob", "annotation.view_campaign",
                                    "training.view_trainingrun")}

    @extend_schema(responses={200: OpenApiResponse(description="{campaign, rounds: [...]} (docs/api.md, Rounds)")})
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response({"campaign": campaign.pk, "rounds": [round_payload(r) for r in lineage(campaign=campaign)]})


def round_payload(round_: Round) -> dict[str, Any]:
    run, version = round_.training_run, round_.model_version
    return {
        "number": round_.number,
        "campaign": {"id": round_.campaign.pk, "name": round_.campaign.name},
        "made_by_job": round_.made_by.pk if round_.made_by else None,
        # The job's own count (langid's verdict on every candidate, dropped ones included).
        "made_by_off_target": ({"count": round_.made_by.off_target_count, "policy": round_.made_by.off_target}
                               if round_.made_by else None),
        "exports": [{"id": e.pk, "kind": e.kind, "status": e.status, "rows": e.rows} for e in round_.exports],
        "training_run": {"id": run.pk, "kind": run.kind, "status": run.status} if run else None,
        "model_version": {"id": version.pk, "name": version.name, "parent": version.parent_id,
                          "base_model": version.base_model_id} if version else None,
        "evaluation_runs": [{"id": e.pk, "status": e.status, "model": e.model_label, "benchmarks": e.benchmarks}
                            for e in round_.evaluation_runs],
        "comparison": _comparison_payload(round_),
        "wrong_language": {
            "flagged_share": round_.flagged_share, "off_target_share": round_.off_target_share,
            "per_language": [{"language": r.language, "judged": r.judged, "flagged": r.flagged,
                              "flagged_share": r.flagged_share, "candidates": r.candidates,
                              "off_target": r.off_target, "off_target_share": r.off_target_share}
                             for r in round_.languages],
        },
        "next_job": ({"id": round_.next_job.pk, "status": round_.next_job.status,
                      "campaign": round_.next_job.campaign_id} if round_.next_job else None),
    }


def _comparison_payload(round_: Round) -> dict[str, Any] | None:
    table, baseline, evaluated = round_.comparison, round_.baseline_run, round_.evaluated_run
    if table is None or baseline is None or evaluated is None:
        return None

    def cell(value: dict) -> dict:
        delta = value["delta"]
        return {"a": value["a"], "b": value["b"], "delta": delta["value"] if delta else None,
                "verdict": delta["verdict"] if delta else None}

    return {
        "baseline_run": baseline.pk, "evaluated_run": evaluated.pk,
        "columns": [{"benchmark": c["benchmark"], "metric": c["metric"]} for c in table["columns"]],
        "languages": [{"language": row["language"]["code"], "cells": [cell(c) for c in row["cells"]]}
                      for row in table["rows"]],
        "means": [cell(mean) for mean in table["means"]],
    }
