"""Generation API shapes (docs/api.md, "Generation"). The input serializer checks only types; every rule (known
models and languages, bounds, the campaign name) is generation/services/validation.py's, so that the API, the pages
and the next-round service refuse the same things with the same words."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.models import Endpoint

_ID = {"type": "integer", "minimum": 1}
_CODES = {"type": "array", "items": {"type": "string"}, "example": ["ta", "hi"]}


@extend_schema_field({
    "type": "array", "minItems": 1, "maxItems": 8,
    "items": {"oneOf": [
        {"type": "object", "properties": {"base_model": _ID}, "required": ["base_model"]},
        {"type": "object", "properties": {"model_version": _ID}, "required": ["model_version"]},
        {"type": "object", "properties": {"endpoint": _ID}, "required": ["endpoint"]},
    ]},
})
class GeneratorsField(serializers.JSONField):
    pass


@extend_schema_field({"oneOf": [
    {"type": "object", "properties": {"campaign": _ID}, "required": ["campaign"]},
    {"type": "object", "properties": {"instruction_set": _ID}, "required": ["instruction_set"]},
    {"type": "object", "required": ["items"], "properties": {"items": {
        "type": "array", "minItems": 1,
        "items": {"type": "object", "required": ["external_id", "text", "language"], "properties": {
            "external_id": {"type": "string"}, "text": {"type": "string"}, "language": {"type": "string"},
            "pivot": {"type": "object", "properties": {"text": {"type": "string"}, "language": {"type": "string"}}},
        }},
    }}},
]})
class PromptsField(serializers.JSONField):
    pass


@extend_schema_field({"oneOf": [_CODES, {"type": "object", "additionalProperties": _CODES},
                                 {"type": "string", "enum": ["campaign"]}], "nullable": True,
                      "description": "codes for every prompt language, or per prompt language, or \"campaign\" (with "
                                     "prompts from a campaign: each prompt in the response languages its items have "
                                     "there); left out: the 30 feedback languages other than the prompt's (a next "
                                     "round: \"campaign\")"})
class ResponseLanguagesField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "properties": {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.8},
    "top_p": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "default": 0.95},
    "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 256},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2147483647, "default": 0},
}})
class ParamsField(serializers.JSONField):
    pass


@extend_schema_field({"oneOf": [
    {"type": "object", "properties": {"id": _ID}, "required": ["id"]},
    {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 200},
                                                            "overlap": {"type": "integer", "minimum": 1,
                                                                        "maximum": 20, "default": 3}}},
]})
class CampaignTargetField(serializers.JSONField):
    pass


class GenerationJobInputSerializer(serializers.Serializer):
    generators = GeneratorsField()
    prompts = PromptsField()
    response_languages = ResponseLanguagesField(required=False, allow_null=True, default=None)
    languages_per_prompt = serializers.IntegerField(required=False, allow_null=True, default=None)
    samples_per_generator = serializers.IntegerField(required=False, default=1)
    params = ParamsField(required=False, allow_null=True, default=None)
    campaign = CampaignTargetField()
    off_target = serializers.CharField(required=False, default="keep", help_text="keep | drop")


class JobCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class JobProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="requests answered (or failed): generator x prompt x language")
    total = serializers.IntegerField()
    percent = serializers.FloatField()


class SkippedSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    reason = serializers.CharField()


class FailureSerializer(serializers.Serializer):
    external_id = serializers.CharField(help_text="the prompt's")
    generator = serializers.CharField()
    language = serializers.CharField()
    message = serializers.CharField()


class GenerationJobSerializer(serializers.Serializer):
    """generation_job_payload, field by field."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    progress = JobProgressSerializer()
    campaign = serializers.IntegerField(allow_null=True)
    campaign_name = serializers.CharField()
    items_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    off_target = serializers.IntegerField(help_text="answers detected in another language than asked")
    off_target_policy = serializers.CharField(help_text="keep | drop")
    duplicates_merged = serializers.IntegerField()
    empty = serializers.IntegerField()
    truncated = serializers.IntegerField()
    skipped = SkippedSerializer(many=True, help_text="the first 100")
    skipped_count = serializers.IntegerField()
    failures = FailureSerializer(many=True, help_text="the first 100 failed requests")
    failure_count = serializers.IntegerField()
    throughput = serializers.DictField(help_text="prompts, outputs, new_tokens, seconds, prompts_per_second, "
                                                 "tokens_per_second, and per_generator")
    generators = serializers.ListField(child=serializers.DictField())
    prompt_source = serializers.DictField()
    response_languages = serializers.JSONField()
    languages_per_prompt = serializers.IntegerField(allow_null=True)
    samples_per_generator = serializers.IntegerField()
    params = serializers.DictField()
    instruction_template = serializers.CharField()
    training_run = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    worker = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class EndpointInputSerializer(serializers.Serializer):
    # Blank passes here so that the service's message (what the field must be) is the one the client reads.
    name = serializers.CharField(max_length=200, allow_blank=True)
    base_url = serializers.CharField(max_length=500, allow_blank=True)
    model = serializers.CharField(max_length=200, allow_blank=True)
    api_key_env = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")
    timeout_seconds = serializers.FloatField(required=False, default=60.0)
    max_retries = serializers.IntegerField(required=False, default=2)
    concurrency = serializers.IntegerField(required=False, default=4)
    notes = serializers.CharField(allow_blank=True, required=False, default="", max_length=10_000)


class EndpointSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Endpoint
        fields = ["id", "name", "base_url", "model", "api_key_env", "timeout_seconds", "max_retries", "concurrency",
                  "notes", "created_by", "created_at"]
