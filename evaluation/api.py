"""REST API v1 for evaluation (ARCHITECTURE.md). Thin: validate types, call a service or selector, serialise."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.errors import InvalidInput, NotFound
from crossfeed.permissions import ModelPermissions
from evaluation import selectors, serializers
from evaluation.benchmarks import all_benchmarks
from evaluation.models import EvaluationRun
from evaluation.services import (
    evaluation_run_cancel,
    evaluation_run_create,
    evaluation_run_retry,
    evaluation_runs_fail_stale,
)
from evaluation.services.sources import benchmark_root
from training.models import BaseModel, ModelVersion


def _run_for(request, run_id: int) -> EvaluationRun:
    return get_object_or_404(selectors.runs_visible_to(request.user), pk=run_id)


def _by_id_or_name(model, value: str | None, field: str):
    """A model version or base model named by its id or its name, as API clients have either at hand."""
    if value in (None, ""):
        return None
    lookup = {"pk": int(value)} if str(value).isdigit() else {"name": value}
    found = model.objects.filter(**lookup).first()
    if found is None:
        raise InvalidInput(f"no {model._meta.verbose_name} with id or name {str(value)[:80]!r}", field=field)
    return found


class BenchmarkList(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.BenchmarkSerializer(many=True))
    def get(self, request):
        rows = []
        for benchmark in all_benchmarks():
            root = benchmark_root(benchmark)
            rows.append({
                **benchmark.describe(root),
                "has_sample_data": bool(benchmark.languages(benchmark.sample_root)),
                "uses_sample_data": root == benchmark.sample_root,
            })
        return Response(serializers.BenchmarkSerializer(rows, many=True).data)


class EvaluationRunList(APIView):
    required_permissions = {"POST": ("evaluation.add_evaluationrun",)}

    def get_permissions(self):
        return [ModelPermissions()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses=serializers.EvaluationRunSerializer(many=True))
    def get(self, request):
        runs = selectors.runs_visible_to(request.user)[:100]
        return Response(serializers.EvaluationRunSerializer(runs, many=True).data)

    @extend_schema(request=serializers.EvaluationRunInputSerializer,
                   responses={201: serializers.EvaluationRunSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"body": ["expected a JSON object"]})
        serializer = serializers.EvaluationRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["model_version"] = _by_id_or_name(ModelVersion, data.pop("model_version", None), "model_version")
        data["base_model"] = _by_id_or_name(BaseModel, data.pop("base_model", None), "base_model")
        run = evaluation_run_create(created_by=request.user, **data)
        return Response(serializers.EvaluationRunSerializer(run).data, status=status.HTTP_201_CREATED)


class EvaluationRunDetail(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.EvaluationRunDetailSerializer)
    def get(self, request, run_id: int):
        evaluation_runs_fail_stale()
        return Response(serializers.EvaluationRunDetailSerializer(_run_for(request, run_id)).data)


class EvaluationRunRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("evaluation.change_evaluationrun",)}

    @extend_schema(request=None, responses={202: serializers.EvaluationRunSerializer})
    def post(self, request, run_id: int):
        run = evaluation_run_retry(run=_run_for(request, run_id))
        return Response(serializers.EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class EvaluationRunCancel(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("evaluation.change_evaluationrun",)}

    @extend_schema(request=None, responses={202: serializers.EvaluationRunSerializer})
    def post(self, request, run_id: int):
        run = evaluation_run_cancel(run=_run_for(request, run_id))
        return Response(serializers.EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class EvaluationRunOutputs(APIView):
    """Every example's output as JSONL (admins only: the file holds all prompts and model outputs verbatim)."""

    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("evaluation.view_evaluationrun",)}

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY})
    def get(self, request, run_id: int):
        run = _run_for(request, run_id)
        path = Path(run.outputs_path) if run.outputs_path else None
        if path is None or not path.is_file():
            raise NotFound(f"evaluation {run.id} has no outputs yet")
        return FileResponse(path.open("rb"), as_attachment=True, filename=f"evaluation-{run.id}-outputs.jsonl",
                            content_type="application/x-ndjson")
