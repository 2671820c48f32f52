"""Translation API shapes (docs/api.md, "Instruction translation"). Input serializers check only types; every rule
is translation/services' own, so that the API and the admin refuse the same things with the same words."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.serializers import JobCreatedSerializer  # noqa: F401 - one schema component for both
from translation.models import Translator


class TranslatorInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True)
    kind = serializers.CharField(help_text="llm | seq2seq | endpoint")
    base_model = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="llm")
    model_version = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="llm")
    endpoint = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="endpoint")
    path = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                 help_text="seq2seq: a model folder, or a hub id already in the local cache")
    prompt_template = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000,
                                            help_text="llm and endpoint: with {source}, {target} and {text}")
    max_new_tokens = serializers.IntegerField(required=False, default=512)
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class TranslatorSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Translator
        fields = ["id", "name", "kind", "base_model", "model_version", "endpoint", "path", "prompt_template",
                  "max_new_tokens", "languages", "notes", "created_by", "created_at"]


@extend_schema_field({"type": "object", "description": "send the translations below the threshold (and those with "
                      "no acceptable candidate, and an audit sample of the others) to a post-editing campaign made "
                      "when the job succeeds", "required": ["campaign_name"],
                      "properties": {"campaign_name": {"type": "string", "maxLength": 200},
                                     "overlap": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1},
                                     "audit_rate": {"type": "number", "minimum": 0, "maximum": 1, "default": 0}}})
class PostEditField(serializers.JSONField):
    pass


class TranslationJobInputSerializer(serializers.Serializer):
    languages = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=300)
    translators = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=8)
    quality_threshold = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0,
                                               max_value=1)
    post_edit = PostEditField(required=False, allow_null=True, default=None)


class TranslationProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="requests answered or failed: forward and back translations")
    total = serializers.IntegerField()
    percent = serializers.FloatField()


class PostEditCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField(help_text="in a post-editing campaign, not post-edited yet")
    accepted = serializers.IntegerField()
    edited = serializers.IntegerField()
    unusable = serializers.IntegerField()
    mean_edit_distance = serializers.FloatField(
        allow_null=True, help_text="mean normalised character edit distance (Levenshtein / longer length) of the "
                                   "accepted (0) and edited translations; null when none")


class TranslationLanguageReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    chosen_by = serializers.DictField(child=serializers.IntegerField(), help_text="{translator name: rows}")
    mean_quality = serializers.FloatField(allow_null=True, help_text="of the chosen translations")
    below_threshold = serializers.IntegerField(help_text="chosen translations under the job's threshold")
    not_acceptable = serializers.IntegerField(help_text="rows with no acceptable candidate: none chosen")
    histogram = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="the chosen translations' scores in 10 bins: [0, 0.1), ... [0.9, 1]")
    post_edited = serializers.IntegerField(help_text="translations post-edited: accepted + edited + unusable")
    post_edit = PostEditCountsSerializer(help_text="counted now from the translations")
    scorer = serializers.CharField(required=False, help_text='what scored the candidates: "comet-kiwi:<model>" or '
                                   '"fallback" (docs/translation-quality.md)')
    scorer_error = serializers.CharField(required=False, allow_blank=True,
                                         help_text="why COMET-Kiwi, configured, was not used; empty if it was")


class TranslationFailureSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    language = serializers.CharField()
    field = serializers.CharField()
    translator = serializers.CharField()
    message = serializers.CharField()


class TranslationJobSerializer(serializers.Serializer):
    """translation_job_payload, field by field."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    instruction_set = serializers.IntegerField()
    languages = serializers.ListField(child=serializers.CharField())
    translators = serializers.ListField(child=serializers.DictField())
    quality_threshold = serializers.FloatField()
    progress = TranslationProgressSerializer()
    per_language = serializers.DictField(child=TranslationLanguageReportSerializer())
    throughput = serializers.DictField(help_text="prompts, outputs, new_tokens, seconds, prompts_per_second, "
                                                 "tokens_per_second, and per_generator (per translator)")
    failures = TranslationFailureSerializer(many=True, help_text="the first 100 failed requests")
    failure_count = serializers.IntegerField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    post_edit_campaign = serializers.IntegerField(allow_null=True, help_text="the post-editing campaign made of "
                                                  "this job's translations, if any")
