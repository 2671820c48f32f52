"""API input and output shapes (ARCHITECTURE.md, REST API v1). Input serializers check types only; the rules
live in the services."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from annotation.languages import get_language
from annotation.models import Campaign, Item, Language, Lease, Response, Verdict

if TYPE_CHECKING:
    from annotation.selectors import ItemRow


def direction_of(code: str | None) -> str:
    spec = get_language(code) if code else None
    return spec.direction if spec else "ltr"


def response_order(item_id: int, annotator_id: int, response_ids: list[int]) -> list[int]:
    """A stable per-annotator shuffle of the responses, so that no model profits from always being shown first.

    Stable: the same annotator sees the same order on reload; different annotators see different orders.
    """

    def key(response_id: int) -> bytes:
        return hashlib.sha256(f"{item_id}:{annotator_id}:{response_id}".encode()).digest()

    return sorted(response_ids, key=key)


class LanguageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Language
        fields = ["code", "name", "native_name", "script", "direction", "tier", "flores_code", "feedback_default"]


class AnnotatorCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    email = serializers.EmailField(required=False, default="")
    native_languages = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1, max_length=50)
    reading_languages = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, default=list, max_length=100
    )


class AnnotatorCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    token = serializers.CharField()
    native_languages = serializers.ListField(child=serializers.CharField())
    reading_languages = serializers.ListField(child=serializers.CharField())


class CampaignInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    overlap = serializers.IntegerField(min_value=1, max_value=20, required=False, default=3)
    lease_minutes = serializers.IntegerField(min_value=1, max_value=1440, required=False, default=10)
    guidelines = serializers.CharField(required=False, default="", allow_blank=True, max_length=100_000)
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False, default=Campaign.Status.ACTIVE)
    flag_vocabulary = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=30, allow_empty=True
    )
    # Gold and qualification (docs/campaigns.md); types only, the ranges are the service's (campaign_check).
    gold_rate = serializers.FloatField(required=False)
    gold_warn_below = serializers.FloatField(required=False)
    gold_exclude_below = serializers.FloatField(required=False)
    gold_min_seen = serializers.IntegerField(required=False)
    qualification_pass_mark = serializers.FloatField(required=False)


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name", "task", "guidelines", "overlap", "lease_minutes", "status", "flag_vocabulary",
                  "created_at", "gold_rate", "gold_warn_below", "gold_exclude_below", "gold_min_seen",
                  "qualification_pass_mark", "qualification_pairs"]


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class TextBlockSerializer(serializers.Serializer):
    text = serializers.CharField()
    language = serializers.CharField()
    direction = serializers.CharField()


class ResponseOutSerializer(TextBlockSerializer):
    id = serializers.IntegerField()
    detected_language = serializers.CharField(
        allow_null=True, help_text="the language a machine's language ID found (a registry code); null when not "
                                   "measurable or not given")
    detected_confidence = serializers.FloatField(
        allow_null=True, help_text="its probability, 0 to 1 (3 decimals); null without detected_language")
    # Post-editing campaigns only: `text` is the machine translation of one field of the source row.
    field = serializers.CharField(required=False, help_text="post-editing only: the field this response translates: "
                                  "instruction, input, output (Alpaca) or m0, m1, ... (message 0, 1, ...)")
    source = serializers.CharField(required=False, help_text="post-editing only: the field's source text, in the "
                                   "prompt's language")
    role = serializers.CharField(required=False, help_text="post-editing only: the message's role (messages sets)")


class ItemOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField()
    task = serializers.ChoiceField(choices=Campaign.Task.choices, help_text="ranking: rank the responses; post_edit: "
                                   "accept, edit or reject the machine translation, one response per field")
    prompt = TextBlockSerializer()
    pivot = TextBlockSerializer(required=False)
    responses = ResponseOutSerializer(many=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)


class NextSerializer(serializers.Serializer):
    task = serializers.ChoiceField(choices=Campaign.Task.choices, help_text="the campaign's task, as the item's")
    item = ItemOutSerializer()


def item_payload(item: Item | ItemRow, annotator_id: int, lease: Lease | None, responses: list | None = None, *,
                 task: str = Campaign.Task.RANKING) -> dict:
    """The item as an annotator sees it: an Item, or selectors.ItemRow with its `responses` (objects with id, text,
    language_id, detected_language and detected_confidence) when the caller already has them (else item.responses).
    `task`: the campaign's (a post-editing item is shown by post_edit_payload)."""
    if task == Campaign.Task.POST_EDIT:
        return post_edit_payload(item, lease)
    responses = {response.id: response for response in (item.responses.all() if responses is None else responses)}
    payload = {
        "id": item.id,
        "campaign": item.campaign_id,
        "task": Campaign.Task.RANKING.value,
        "prompt": {
            "text": item.prompt_text,
            "language": item.prompt_language_id,
            "direction": direction_of(item.prompt_language_id),
        },
        "responses": [
            {
                "id": response_id,
                "text": responses[response_id].text,
                "language": responses[response_id].language_id,
                "direction": direction_of(responses[response_id].language_id),
                **detection_payload(responses[response_id]),
            }
            for response_id in response_order(item.id, annotator_id, list(responses))
        ],
        "lease_expires_at": lease.expires_at if lease else None,
    }
    if item.pivot_language_id:
        payload["pivot"] = {
            "text": item.pivot_text,
            "language": item.pivot_language_id,
            "direction": direction_of(item.pivot_language_id),
        }
    return payload


def post_edit_payload(item: Item | ItemRow, lease: Lease | None) -> dict:
    """A post-editing item: the source row as the prompt, and one response per field in the row's order (never
    shuffled: instruction before output), each with its field's name and source text."""
    responses = Response.objects.filter(item_id=item.id).order_by("position").values_list(
        "id", "text", "language_id", "metadata")
    source_direction = direction_of(item.prompt_language_id)
    return {
        "id": item.id,
        "campaign": item.campaign_id,
        "task": Campaign.Task.POST_EDIT.value,
        "prompt": {"text": item.prompt_text, "language": item.prompt_language_id, "direction": source_direction},
        "responses": [
            {"id": response_id, "text": text, "language": language, "direction": direction_of(language),
             "detected_language": None, "detected_confidence": None,
             "field": str((metadata or {}).get("field", "")), "source": str((metadata or {}).get("source", "")),
             **({"role": str(metadata["role"])} if (metadata or {}).get("role") else {})}
            for response_id, text, language, metadata in responses
        ],
        "lease_expires_at": lease.expires_at if lease else None,
    }


def detection_payload(response) -> dict:
    """{detected_language, detected_confidence} of a response: a code and a probability rounded to 3 places, or
    nulls when nothing was measured (a confidence without its language says nothing, so it is left out too)."""
    language = response.detected_language or None
    confidence = response.detected_confidence
    return {"detected_language": language,
            "detected_confidence": round(confidence, 3) if language and confidence is not None else None}


class JudgmentInputSerializer(serializers.Serializer):
    # Type checks only; which ids and ranks are allowed depends on the item, so the service checks those.
    ranks = serializers.DictField(child=serializers.IntegerField())
    flags = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=40), max_length=20),
        required=False,
        default=dict,
    )
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    seconds_spent = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86400)
    idempotency_key = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,128}\Z", max_length=128)


class PostEditInputSerializer(serializers.Serializer):
    """A judgment on an item of a post-editing campaign (docs/api.md)."""

    verdict = serializers.ChoiceField(choices=[choice.value for choice in Verdict],
                                      help_text="accepted: the machine translation is right as it is; edited: with "
                                                "edits; unusable: too wrong to fix")
    edits = serializers.DictField(
        child=serializers.CharField(max_length=20_000), required=False, default=dict,
        help_text='with "edited" only, and then required: {"<response id>": corrected text}; an edit equal to the '
                  'machine text is dropped, and "edited" with none left is stored as "accepted"')
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    seconds_spent = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86400)
    idempotency_key = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,128}\Z", max_length=128)


# The body of POST items/{id}/judgments/: a ranking, or a post-edit on a post-editing campaign's item.
JudgmentBodySerializer = PolymorphicProxySerializer(
    component_name="JudgmentBody", serializers=[JudgmentInputSerializer, PostEditInputSerializer],
    resource_type_field_name=None)


class JudgmentOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=["created", "replayed", "revised"])
    revision = serializers.IntegerField()


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)


class PairStatsSerializer(serializers.Serializer):
    prompt_language = serializers.CharField()
    response_language = serializers.CharField()
    items = serializers.IntegerField()
    judgments = serializers.IntegerField()
    complete_items = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)


class CampaignStatsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    items = serializers.IntegerField()
    judgments = serializers.IntegerField()
    complete_items = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    language_pairs = PairStatsSerializer(many=True)


class ExportInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["preference", "sft"], required=False, default="preference")
    format = serializers.ChoiceField(choices=["jsonl", "parquet"], required=False, default="jsonl")
    pairs = serializers.ChoiceField(choices=["all", "best_vs_rest", "best_vs_worst"], required=False, default="all")
    min_judgments = serializers.IntegerField(min_value=1, max_value=20, required=False, default=2)
    min_agreement = serializers.FloatField(min_value=0, max_value=1, required=False, default=0.0)
    languages = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list,
                                      max_length=200)
    test_fraction = serializers.FloatField(min_value=0, max_value=0.99, required=False, default=0.1)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
    weights = serializers.BooleanField(required=False, default=False)


class ExportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField()
    sha256 = serializers.CharField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()


class ExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField(source="campaign_id")
    status = serializers.CharField()
    kind = serializers.CharField()
    format = serializers.CharField()
    pairs = serializers.CharField()
    min_judgments = serializers.IntegerField()
    min_agreement = serializers.FloatField()
    languages = serializers.ListField(child=serializers.CharField())
    test_fraction = serializers.FloatField()
    seed = serializers.IntegerField()
    cutoff = serializers.DateTimeField()
    progress = serializers.SerializerMethodField()
    rows = serializers.IntegerField()
    per_language = serializers.DictField()
    language_pairs = serializers.ListField(child=serializers.DictField())
    agreement = serializers.DictField()
    files = serializers.SerializerMethodField()
    weights = serializers.BooleanField()
    exclusions = serializers.ListField(child=serializers.DictField())
    adjudicated = serializers.IntegerField()
    error = serializers.CharField()
    # null: the creator was deleted (or a script made it); the export has not finished yet.
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_progress(self, export) -> dict:
        return {"done": export.progress_done, "total": export.progress_total}

    def get_files(self, export) -> list[dict]:
        from django.urls import reverse

        names = [f["name"] for f in export.files] + (["README.md"] if export.files else [])
        described = {f["name"]: f for f in export.files}
        return [
            {
                "name": name,
                "url": reverse("api-export-file", kwargs={"export_id": export.id, "name": name}),
                "sha256": described.get(name, {}).get("sha256", ""),
                "rows": described.get(name, {}).get("rows", 0),
                "bytes": described.get(name, {}).get("bytes", 0),
            }
            for name in names
        ]


# --- quality: annotators' records and exclusions (docs/api.md) ------------------------------------------------


class QualificationOutSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    correct = serializers.IntegerField()
    answered = serializers.IntegerField()
    pass_mark = serializers.FloatField()
    decided_at = serializers.DateTimeField()


class AnnotatorPairSerializer(serializers.Serializer):
    pair = serializers.CharField(help_text="prompt language→response language, e.g. sw→ta")
    prompt_language = serializers.CharField()
    response_language = serializers.CharField()
    judgments = serializers.IntegerField(help_text="judgments of items to rank (gold and qualification not counted)")
    gold_seen = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    state = serializers.ChoiceField(choices=["ok", "warned", "excluded"])
    state_changed_at = serializers.DateTimeField(allow_null=True)
    state_reason = serializers.CharField(allow_blank=True)
    qualification = QualificationOutSerializer(allow_null=True)


class ExclusionOutSerializer(serializers.Serializer):
    reason = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class AnnotatorOverviewSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="username")
    user_id = serializers.IntegerField()
    language_pairs = AnnotatorPairSerializer(many=True)
    active_seconds = serializers.IntegerField()
    excluded = ExclusionOutSerializer(allow_null=True, help_text="an admin's exclusion from the campaign, if any")


class ExclusionInputSerializer(serializers.Serializer):
    # Documents the body; the service checks it (user: id or username; since: a date or ISO 8601 date-time).
    user = serializers.CharField(help_text="the annotator's user id or username")
    reason = serializers.CharField(max_length=1000)
    since = serializers.CharField(required=False, allow_null=True, help_text="e.g. 2026-03-01; absent: every judgment")


class ExclusionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField(source="campaign_id")
    user = serializers.CharField(source="annotator.username")
    user_id = serializers.IntegerField(source="annotator_id")
    reason = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
