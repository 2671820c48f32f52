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


class InstructionExportInputSerializer(serializers.Serializer):
    """POST instruction-sets/{id}/exports/: types only; instruction_export_create checks the rest."""

    translation_job = serializers.IntegerField(required=False, allow_null=True, default=None,
                                               help_text="a succeeded translation job of this set; default: the "
                                                         "newest")
    languages = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list,
                                      max_length=300, help_text="target languages of the job; empty: all of them")
    include_source = serializers.BooleanField(required=False, default=True,
                                              help_text="also export the set's own rows, in its language")


class InstructionExportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField()
    rows = serializers.IntegerField(help_text="0 for README.md, the dataset card")
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()


class InstructionExportProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class InstructionExportLeftOutSerializer(serializers.Serializer):
    not_acceptable = serializers.IntegerField(help_text="no candidate chosen, not post-edited")
    unusable = serializers.IntegerField(help_text="marked unusable by a post-editor")


class InstructionExportLanguageSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    by_translator = serializers.DictField(child=serializers.IntegerField(),
                                          help_text='{translator name: rows}; "source" for the set\'s own rows')
    mean_quality = serializers.FloatField(allow_null=True, help_text="of the exported translations")
    below_threshold = serializers.IntegerField(allow_null=True)
    below_threshold_share = serializers.FloatField(allow_null=True)
    post_edited = serializers.IntegerField(help_text="accepted + edited")
    accepted = serializers.IntegerField()
    edited = serializers.IntegerField()
    post_edit_share = serializers.FloatField(allow_null=True)
    mean_edit_distance = serializers.FloatField(allow_null=True)
    left_out = InstructionExportLeftOutSerializer()


class InstructionExportSerializer(serializers.Serializer):
    """instruction_export_payload, field by field."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    instruction_set = serializers.IntegerField()
    translation_job = serializers.IntegerField(allow_null=True)
    languages = serializers.ListField(child=serializers.CharField())
    include_source = serializers.BooleanField()
    progress = InstructionExportProgressSerializer()
    rows = serializers.IntegerField()
    per_language = serializers.DictField(child=InstructionExportLanguageSerializer())
    files = InstructionExportFileSerializer(many=True)
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
