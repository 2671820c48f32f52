"""REST API v1 for instruction translation (docs/api.md, "Instruction translation"): translators and translation
jobs. Admins only: a job spends accelerator hours or paid endpoint calls. Thin: check types, call a service, answer
with the job as translation_job_payload describes it."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.permissions import ModelPermissions
from generation.api import _valid
from instructions.models import InstructionSet
from translation import serializers
from translation.models import TranslationJob, Translator
from translation.services.jobs import (
    translation_job_cancel,
    translation_job_create,
    translation_job_payload,
    translation_job_retry,
    translation_jobs_fail_stale,
)
from translation.services.translators import translator_create

ERRORS_BY_FIELD = OpenApiResponse(description="errors by field; nothing was stored")


def _jobs():
    return TranslationJob.objects.select_related("created_by")


def _job_body(job: TranslationJob) -> dict:
    return serializers.TranslationJobSerializer(translation_job_payload(job)).data


class TranslatorList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("translation.view_translator",), "POST": ("translation.add_translator",)}

    @extend_schema(responses=serializers.TranslatorSerializer(many=True))
    def get(self, request):
        translators = Translator.objects.select_related("created_by")
        return Response(serializers.TranslatorSerializer(translators, many=True).data)

    @extend_schema(request=serializers.TranslatorInputSerializer,
                   responses={201: serializers.TranslatorSerializer, 400: ERRORS_BY_FIELD})
    def post(self, request):
        data = _valid(serializers.TranslatorInputSerializer, request.data).validated_data
        translator = translator_create(created_by=request.user, **data)
        return Response(serializers.TranslatorSerializer(translator).data, status=status.HTTP_201_CREATED)


class SetTranslations(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("translation.add_translationjob",)}

    @extend_schema(request=serializers.TranslationJobInputSerializer,
                   responses={201: serializers.JobCreatedSerializer, 400: ERRORS_BY_FIELD})
    def post(self, request, set_id: int):
        instruction_set = get_object_or_404(InstructionSet.objects.ready(), pk=set_id)
        data = _valid(serializers.TranslationJobInputSerializer, request.data).validated_data
        job = translation_job_create(instruction_set=instruction_set, created_by=request.user, **data)
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_201_CREATED)


class TranslationJobList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("translation.view_translationjob",)}

    @extend_schema(responses=serializers.TranslationJobSerializer(many=True))
    def get(self, request):
        translation_jobs_fail_stale()  # a job whose worker died shows as failed, with the reason
        return Response([_job_body(job) for job in _jobs()[:100]])


class TranslationJobDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("translation.view_translationjob",)}

    @extend_schema(responses=serializers.TranslationJobSerializer)
    def get(self, request, job_id: int):
        translation_jobs_fail_stale()
        return Response(_job_body(get_object_or_404(_jobs(), pk=job_id)))


class TranslationJobCancel(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("translation.change_translationjob",)}

    @extend_schema(request=None, responses={202: serializers.JobCreatedSerializer, 409: None})
    def post(self, request, job_id: int):
        job = translation_job_cancel(job=get_object_or_404(TranslationJob, pk=job_id))
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class TranslationJobRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("translation.change_translationjob",)}

    @extend_schema(request=None, responses={202: serializers.JobCreatedSerializer, 409: None})
    def post(self, request, job_id: int):
        translation_jobs_fail_stale()  # so that a job with a dead worker can be retried at once
        job = translation_job_retry(job=get_object_or_404(TranslationJob, pk=job_id))
        return Response({"id": job.id, "status": job.status}, status=status.HTTP_202_ACCEPTED)
