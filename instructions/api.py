"""REST API v1 for instruction sets and their SFT exports (docs/instruction-sets.md, docs/api.md). Admins only: a set
is the SFT data that translation jobs and training runs read. Thin: check the types, call a service, serialise."""

from __future__ import annotations

from pathlib import PurePath

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.errors import InvalidInput, NotFound
from crossfeed.permissions import ModelPermissions
from generation.api import _valid
from instructions import serializers
from instructions.models import InstructionExport, InstructionSet
from instructions.services.exports import (
    CARD_FILE,
    export_folder,
    instruction_export_create,
    instruction_export_payload,
    instruction_export_retry,
    instruction_exports_fail_stale,
)
from instructions.services.sets import instruction_set_import

UPLOAD_SCHEMA = {"multipart/form-data": {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary",
             "description": "Alpaca JSON (an array) or JSONL, or TRL messages JSONL"},
    "name": {"type": "string", "maxLength": 200, "description": "default: the file's name"},
    "language": {"type": "string", "description": "the set's language (BCP-47 or FLORES-200); default en"},
    "notes": {"type": "string"},
}}}


class InstructionSetList(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("instructions.view_instructionset",),
                            "POST": ("instructions.add_instructionset", "instructions.add_instructionrow")}
    parser_classes = [MultiPartParser]

    @extend_schema(responses=serializers.InstructionSetSerializer(many=True))
    def get(self, request):
        sets = InstructionSet.objects.ready().select_related("created_by")
        return Response(serializers.InstructionSetSerializer(sets, many=True).data)

    @extend_schema(
        request=UPLOAD_SCHEMA,
        responses={
            201: serializers.InstructionSetSerializer,
            400: OpenApiResponse(description="errors by line: {detail, errors: [{line, field, message}] (the first "
                                             "MAX_IMPORT_ERRORS), error_count, truncated}, or errors by field "
                                             "(name, language, file); nothing stored"),
        },
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("upload the instruction set in a form field named 'file'", field="file")
        fields = serializers.InstructionSetInputSerializer(data=request.data)
        fields.is_valid(raise_exception=True)
        data = fields.validated_data
        file_name = PurePath(upload.name or "").name
        try:
            instruction_set = instruction_set_import(
                name=data.get("name") or file_name, source=upload, language=data["language"],
                created_by=request.user, source_name=file_name, notes=data["notes"])
        finally:
            upload.close()
        return Response(serializers.InstructionSetSerializer(instruction_set).data, status=status.HTTP_201_CREATED)


class InstructionSetDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("instructions.view_instructionset",)}

    @extend_schema(responses=serializers.InstructionSetSerializer)
    def get(self, request, set_id: int):
        instruction_set = get_object_or_404(InstructionSet.objects.ready().select_related("created_by"), pk=set_id)
        return Response(serializers.InstructionSetSerializer(instruction_set).data)


def _exports():
    return InstructionExport.objects.select_related("created_by")


def _export_body(export: InstructionExport) -> dict:
    return serializers.InstructionExportSerializer(instruction_export_payload(export)).data


class SetExports(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("instructions.view_instructionexport",),
                            "POST": ("instructions.add_instructionexport",)}

    @extend_schema(request=serializers.InstructionExportInputSerializer,
                   responses={202: serializers.InstructionExportSerializer,
                              400: OpenApiResponse(description="errors by field (instruction_set, translation_job, "
                                                               "languages, include_source); nothing was stored")})
    def post(self, request, set_id: int):
        instruction_set = get_object_or_404(InstructionSet.objects.ready(), pk=set_id)
        data = _valid(serializers.InstructionExportInputSerializer, request.data).validated_data
        export = instruction_export_create(instruction_set=instruction_set, created_by=request.user, **data)
        return Response(_export_body(export), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=serializers.InstructionExportSerializer(many=True))
    def get(self, request, set_id: int):
        instruction_set = get_object_or_404(InstructionSet.objects.ready(), pk=set_id)
        instruction_exports_fail_stale()
        return Response([_export_body(export) for export in _exports().filter(instruction_set=instruction_set)[:100]])


class InstructionExportDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("instructions.view_instructionexport",)}

    @extend_schema(responses=serializers.InstructionExportSerializer)
    def get(self, request, export_id: int):
        instruction_exports_fail_stale()  # an export whose worker died shows as failed, with the reason
        return Response(_export_body(get_object_or_404(_exports(), pk=export_id)))


class InstructionExportRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("instructions.change_instructionexport",)}

    @extend_schema(request=None, responses={202: serializers.InstructionExportSerializer, 409: None})
    def post(self, request, export_id: int):
        instruction_exports_fail_stale()  # so that an export with a dead worker can be retried at once
        export = instruction_export_retry(export=get_object_or_404(_exports(), pk=export_id))
        return Response(_export_body(export), status=status.HTTP_202_ACCEPTED)


class InstructionExportFile(APIView):
    """Download one published file of an export: a language file, sft-all.jsonl or README.md."""

    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("instructions.view_instructionexport",)}

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, export_id: int, name: str):
        export = get_object_or_404(InstructionExport, pk=export_id, status="succeeded")
        allowed = {entry["name"] for entry in export.files} | {CARD_FILE}
        if name not in allowed:  # only names we wrote: no path from the request reaches the file system
            raise NotFound(f"instruction set export {export.pk} has no file named {name[:80]!r}; its files: "
                           f"{', '.join(sorted(allowed))}")
        path = export_folder(export) / name
        if not path.is_file():
            raise NotFound(f"the file {name} of instruction set export {export.pk} is missing on the server; "
                           "export again")
        return FileResponse(path.open("rb"), as_attachment=True,
                            filename=f"instruction-export-{export.pk}-{name}")
