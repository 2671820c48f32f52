"""REST API v1 for training (ARCHITECTURE.md): base models, training runs, SFT uploads. Admins only: runs spend
GPU hours and read every annotator's rankings. Thin: validate types, call a service or selector, serialise."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.errors import InvalidInput, NotFound
from crossfeed.permissions import ModelPermissions
from training import selectors, serializers
from training.models import BaseModel, TrainingRun
from training.services.registry import base_model_register
from training.services.runs import (
    training_run_cancel,
    training_run_create,
    training_run_retry,
    training_runs_fail_stale,
)
from training.services.uploads import sft_upload_store

# The services name the model's fields; the API's client sent sft_data.
SFT_FIELDS = {"sft_export": "sft_data", "sft_dataset": "sft_data", "sft_file": "sft_data"}


class BaseModelList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("training.view_basemodel", "training.view_modelversion"),
                            "POST": ("training.add_basemodel",)}

    @extend_schema(responses=serializers.BaseModelSerializer(many=True))
    def get(self, request):
        models = BaseModel.objects.prefetch_related("versions")
        return Response(serializers.BaseModelSerializer(models, many=True).data)

    @extend_schema(request=serializers.BaseModelInputSerializer, responses={201: serializers.BaseModelSerializer})
    def post(self, request):
        data = _valid(serializers.BaseModelInputSerializer, request.data)
        model = base_model_register(created_by=request.user, **data.validated_data)
        return Response(serializers.BaseModelSerializer(model).data, status=status.HTTP_201_CREATED)


class TrainingRunList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("training.view_trainingrun",), "POST": ("training.add_trainingrun",)}

    @extend_schema(responses=serializers.TrainingRunSerializer(many=True))
    def get(self, request):
        training_runs_fail_stale()
        runs = selectors.runs_listed()[:100]
        return Response(serializers.TrainingRunSerializer(runs, many=True).data)

    @extend_schema(
        request=serializers.TrainingRunInputSerializer,
        responses={201: serializers.RunCreatedSerializer, 400: OpenApiResponse(description="errors by field")},
    )
    def post(self, request):
        data = _valid(serializers.TrainingRunInputSerializer, request.data)
        try:
            run = training_run_create(created_by=request.user, **data.service_arguments())
        except InvalidInput as exc:
            exc.field = SFT_FIELDS.get(exc.field, exc.field)
            raise
        return Response({"id": run.id, "status": run.status}, status=status.HTTP_201_CREATED)


class TrainingRunDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("training.view_trainingrun",)}

    @extend_schema(responses=serializers.TrainingRunDetailSerializer)
    def get(self, request, run_id: int):
        training_runs_fail_stale()  # a run whose worker died shows as failed, with the reason
        run = selectors.run_detail(run_id)
        if run is None:
            raise NotFound(f"there is no training run {run_id}")
        return Response(serializers.TrainingRunDetailSerializer(run).data)


class TrainingRunCancel(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("training.change_trainingrun",)}

    @extend_schema(request=None, responses={202: serializers.RunCreatedSerializer, 409: None})
    def post(self, request, run_id: int):
        run = training_run_cancel(run=get_object_or_404(TrainingRun, pk=run_id))
        return Response({"id": run.id, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class TrainingRunRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("training.change_trainingrun",)}

    @extend_schema(request=None, responses={202: serializers.RunCreatedSerializer, 409: None})
    def post(self, request, run_id: int):
        training_runs_fail_stale()  # so that a run with a dead worker can be retried at once
        run = training_run_retry(run=get_object_or_404(TrainingRun, pk=run_id))
        return Response({"id": run.id, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class SFTUpload(APIView):
    """Store an SFT JSONL for use as sft_data.file; the server chooses the file's name."""

    # Only a training run uses the file.
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("training.add_trainingrun",)}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string",
                                                                                   "format": "binary"}}}},
        responses={201: serializers.SFTUploadSerializer, 400: OpenApiResponse(description="the first bad line")},
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput('upload the JSONL file in a form field named "file"', field="file")
        try:
            stored = sft_upload_store(upload=upload)
        except InvalidInput as exc:
            exc.field = "file"
            raise
        return Response({"path": stored.path, "rows": stored.rows}, status=status.HTTP_201_CREATED)


def _valid(serializer_class, data):
    if not isinstance(data, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer
