"""REST API v1 for instruction sets (docs/instruction-sets.md, docs/api.md). Admins only: a set is the SFT data
that translation jobs and training runs read. Thin: check the form's types, call the import service, serialise."""

from __future__ import annotations

from pathlib import PurePath

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crossfeed.errors import InvalidInput
from crossfeed.permissions import ModelPermissions
from instructions import serializers
from instructions.models import InstructionSet
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
