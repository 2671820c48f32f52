"""API shapes for evaluation (ARCHITECTURE.md, REST contract v1)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from evaluation import selectors
from evaluation.models import EvaluationRun


class BenchmarkSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    task = serializers.CharField()
    metrics = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField(), help_text="languages of the data in use")
    has_sample_data = serializers.BooleanField()
    uses_sample_data = serializers.BooleanField(help_text="false once an admin set a data folder of its own")
    layout = serializers.CharField()


class EvaluationRunInputSerializer(serializers.Serializer):
    model_version = serializers.CharField(required=False, help_text="id or name of a model version")
    base_model = serializers.CharField(required=False, help_text="id or name of a base model, evaluated bare")
    benchmarks = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    languages = serializers.ListField(child=serializers.CharField(), required=False,
                                      help_text="empty or absent: every language each benchmark has")
    limit = serializers.IntegerField(required=False, allow_null=True, help_text="examples per language")
    max_new_tokens = serializers.IntegerField(required=False)
    batch_size = serializers.IntegerField(required=False)
    samples = serializers.BooleanField(required=False, help_text="use the shipped sample sets")


class ResultSerializer(serializers.Serializer):
    benchmark = serializers.CharField()
    language = serializers.CharField()
    metric = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class SkippedSerializer(serializers.Serializer):
    benchmark = serializers.CharField()
    language = serializers.CharField()
    reason = serializers.CharField()


class SummarySerializer(serializers.Serializer):
    benchmark = serializers.CharField()
    metric = serializers.CharField()
    mean = serializers.FloatField(allow_null=True)
    parity = serializers.FloatField(allow_null=True)
    best_language = serializers.CharField(allow_null=True)
    languages = serializers.IntegerField()


class EvaluationRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    model = serializers.CharField(source="model_label")
    model_version = serializers.IntegerField(source="model_version_id", allow_null=True)
    base_model = serializers.IntegerField(source="base_model_id")
    benchmarks = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    limit = serializers.IntegerField(allow_null=True)
    generation = serializers.SerializerMethodField()
    trigger = serializers.CharField()
    progress = serializers.SerializerMethodField()
    eta_seconds = serializers.IntegerField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    outputs_url = serializers.SerializerMethodField()

    def get_generation(self, run: EvaluationRun) -> dict:
        return {"max_new_tokens": run.max_new_tokens, "batch_size": run.batch_size}

    def get_progress(self, run: EvaluationRun) -> dict:
        return {"done": run.progress_done, "total": run.progress_total, "percent": run.percent}

    def get_outputs_url(self, run: EvaluationRun) -> str:
        return reverse("api-evaluation-run-outputs", kwargs={"run_id": run.id})


class EvaluationRunDetailSerializer(EvaluationRunSerializer):
    results = serializers.SerializerMethodField()
    skipped = serializers.SerializerMethodField()
    summaries = serializers.SerializerMethodField()

    def _parts(self, run: EvaluationRun) -> tuple[list, list, list]:
        if not hasattr(self, "_cached"):
            self._cached = selectors.run_payload_results(run)
        return self._cached

    def get_results(self, run: EvaluationRun) -> list[dict]:
        return ResultSerializer(self._parts(run)[0], many=True).data

    def get_skipped(self, run: EvaluationRun) -> list[dict]:
        return SkippedSerializer(self._parts(run)[1], many=True).data

    def get_summaries(self, run: EvaluationRun) -> list[dict]:
        return SummarySerializer(self._parts(run)[2], many=True).data
