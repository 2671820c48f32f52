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
    dataset = serializers.CharField(help_text="the data set its files come from (a benchmark source may name it)")
    hub_repo = serializers.CharField(help_text="where the public data set is (Hugging Face Hub id); empty if none")
    supported_languages = serializers.ListField(
        child=serializers.CharField(), allow_null=True,
        help_text="languages the public data set covers (manage.py fetch_benchmarks); null: any, with your own files")
    default_limit = serializers.IntegerField(allow_null=True,
                                             help_text="examples per language when a run sets no limit; null: all")


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
    n = serializers.IntegerField(help_text="examples the value is computed over; off-target rate: measured outputs")
    settings = serializers.DictField(
        help_text="how the value was computed: 'signature' (sacrebleu's) for bleu, spbleu and chrf++, the segmenter "
                  "and stemmer for rouge_l, the detector and thresholds for off_target_rate; {} for others")
    note = serializers.CharField(allow_blank=True, help_text="why there is no value, e.g. 'spBLEU: model missing'")
    on_target = serializers.IntegerField(allow_null=True, help_text="off_target_rate only; null for other metrics")
    off_target = serializers.IntegerField(allow_null=True, help_text="off_target_rate only")
    not_measurable = serializers.IntegerField(
        allow_null=True, help_text="off_target_rate only: outputs whose language could not be judged (not in n)")


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
    languages_without_data = serializers.ListField(
        child=serializers.CharField(), help_text="chosen languages that none of the chosen benchmarks has data for")
    limit = serializers.IntegerField(allow_null=True)
    generation = serializers.SerializerMethodField()
    trigger = serializers.CharField()
    progress = serializers.SerializerMethodField()
    eta_seconds = serializers.IntegerField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    timings = serializers.JSONField(help_text="the last attempt: wall_seconds, seconds and share per phase "
                                              "(load_model, prompts, generate, loglikelihood, metrics, write, "
                                              "other), batches, rows and tokens")
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
