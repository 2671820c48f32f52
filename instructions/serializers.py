"""Serializers of the instruction sets' API: input types only; the import service checks the rest."""

from __future__ import annotations

from rest_framework import serializers

from instructions.models import InstructionSet
from instructions.services.sets import MAX_NAME_CHARS


class InstructionSetInputSerializer(serializers.Serializer):
    """The form fields beside the multipart `file`."""

    name = serializers.CharField(max_length=MAX_NAME_CHARS, required=False, allow_blank=True,
                                 help_text="default: the file's name")
    language = serializers.CharField(max_length=40, required=False, default="en",
                                     help_text="the language the set is written in (BCP-47 or FLORES-200)")
    notes = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


class InstructionSetSerializer(serializers.ModelSerializer):
    # Plain strings, as in the exports' serializer: choice fields would add enum components whose names collide.
    format = serializers.CharField()
    status = serializers.CharField()
    language = serializers.CharField(source="language_id")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = InstructionSet
        fields = ["id", "name", "format", "language", "rows", "sha256", "status", "source_name", "notes",
                  "created_by", "created_at"]
        read_only_fields = fields
