"""REST API v1 for generation (docs/api.md, "Generation"): generation jobs and endpoints. Admins only: a job
spends accelerator hours or paid endpoint calls and writes a campaign's items. Thin: check types, call a service,
answer with the job as generation_job_payload describes it."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.permissions import ModelPermissions
from generation import serializers
from generation.models import Endpoint, GenerationJob
from generation.services.endpoints import endpoint_create
from generation.services.jobs import (
    generation_job_cancel,
    generation_job_create,
    generation_job_payload,
    generation_job_retry,
    generation_jobs_fail_stale,
)

ERRORS_BY_FIELD = OpenApiResponse(description="errors by field; nothing was stored")


def _jobs():
    return GenerationJob.objects.select_related("campaign", "created_by")


def _job_body(job: GenerationJob) -> dict:
    return serializers.GenerationJobSerializer(generation_job_payload(job)).data


def _valid(serializer_class, data):
    if not isinstance(data, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    unknown = sorted(str(key) for key in set(data) - set(serializer_class().fields))
    if unknown:
        # A misspelt optional field would otherwise be ignored and its default used without a word.
        raise ValidationError({key[:100]: ["unknown field"] for key in unknown[:20]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer


class GenerationJobList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("generation.view_generationjob",), "POST": ("generation.add_generationjob",)}

    @extend_schema(responses=serializers.GenerationJobSerializer(many=True))
    def get(self, request):
        generation_jobs_fail_stale()  # a job whose worker died shows as failed, with the reason
        return Response([_job_body(job) for job in _jobs()[:100]])

    @extend_schema(request=serializers.GenerationJobInputSerializer,
                   responses={201: serializers.JobCreatedSerializer, 400: ERRORS_BY_FIELD})
    def post(self, request):
        data = _valid(serializers.GenerationJobInputSerializer, request.data).validated_data
        job = generation_job_create(created_by=request.user, **data)
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_201_CREATED)


class GenerationJobDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("generation.view_generationjob",)}

    @extend_schema(responses=serializers.GenerationJobSerializer)
    def get(self, request, job_id: int):
        generation_jobs_fail_stale()
        return Response(_job_body(get_object_or_404(_jobs(), pk=job_id)))


class GenerationJobCancel(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("generation.change_generationjob",)}

    @extend_schema(request=None, responses={202: serializers.JobCreatedSerializer, 409: None})
    def post(self, request, job_id: int):
        job = generation_job_cancel(job=get_object_or_404(GenerationJob, pk=job_id))
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class GenerationJobRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("generation.change_generationjob",)}

    @extend_schema(request=None, responses={202: serializers.JobCreatedSerializer, 409: None})
    def post(self, request, job_id: int):
        generation_jobs_fail_stale()  # so that a job with a dead worker can be retried at once
        job = generation_job_retry(job=get_object_or_404(GenerationJob, pk=job_id))
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class EndpointList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("generation.view_endpoint",), "POST": ("generation.add_endpoint",)}

    @extend_schema(responses=serializers.EndpointSerializer(many=True))
    def get(self, request):
        endpoints = Endpoint.objects.select_related("created_by")
        return Response(serializers.EndpointSerializer(endpoints, many=True).data)

    @extend_schema(request=serializers.EndpointInputSerializer,
                   responses={201: serializers.EndpointSerializer, 400: ERRORS_BY_FIELD})
    def post(self, request):
        data = _valid(serializers.EndpointInputSerializer, request.data).validated_data
        endpoint = endpoint_create(created_by=request.user, **data)
        return Response(serializers.EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)
