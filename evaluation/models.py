"""Evaluation runs and their per-language results, and where each benchmark's data lives.

A run evaluates one model (a registered version, or a bare base model) on some benchmarks and languages. Every
model output is appended to the run's outputs JSONL as soon as it exists, so a crashed run keeps what it did and a
retry continues after it. Results are computed from that file, one row per benchmark, language and metric; a
language a benchmark does not have gets one row marked skipped (with the reason), never a zero.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import BackgroundJob, JobStatus
from training.models import BaseModel, ModelVersion, TrainingRun

# Metrics where a lower value is better; every other metric is higher-is-better, except those in NEUTRAL_METRICS.
LOWER_IS_BETTER = frozenset({"off_target_rate"})
NEUTRAL_METRICS = frozenset({"mean_length"})


class BenchmarkSource(models.Model):
    """Where the files of a benchmark (or of a whole dataset, e.g. flores200 for both directions) are."""

    name = models.CharField(_("benchmark or dataset"), max_length=64, unique=True)
    path = models.CharField(_("data folder on the worker"), max_length=500)
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.path}"


class EvaluationRun(BackgroundJob, models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual", _("started by an admin")
        AFTER_TRAINING = "after_training", _("after a training run")

    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="evaluation_runs")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="evaluation_runs",
                                   help_text=_("the version's base model, or the model evaluated bare"))
    benchmarks = models.JSONField(default=list)
    languages = models.JSONField(default=list, blank=True, help_text=_("empty: every language a benchmark has"))
    languages_without_data = models.JSONField(
        default=list, blank=True, help_text=_("chosen languages that none of the chosen benchmarks has data for"))
    limit = models.PositiveIntegerField(null=True, blank=True, help_text=_("examples per language; empty: all"))
    max_new_tokens = models.PositiveIntegerField(default=512)
    batch_size = models.PositiveSmallIntegerField(default=8)
    sources = models.JSONField(default=dict, help_text=_("benchmark -> data folder, fixed when the run is created"))
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    training_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="evaluation_runs")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    # The last attempt's wall time by phase (load_model, prompts, generate, loglikelihood, metrics, write) and what
    # it did (batches, rows, tokens): evaluation/services/execution.py, Attempt.report.
    timings = models.JSONField(default=dict, blank=True, help_text=_("where the last attempt's time went"))
    error = models.TextField(blank=True)
    outputs_path = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(max_new_tokens__gte=1, max_new_tokens__lte=8192),
                                   name="evaluation_run_max_new_tokens"),
            models.CheckConstraint(condition=Q(batch_size__gte=1, batch_size__lte=512),
                                   name="evaluation_run_batch_size"),
        ]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.model_label}"

    @property
    def model_label(self) -> str:
        """The name responses carry in annotation items: the version's name, or the base model's."""
        return self.model_version.name if self.model_version_id else self.base_model.name

    @property
    def percent(self) -> float:
        return round(100 * self.progress_done / self.progress_total, 1) if self.progress_total else 0.0


class EvaluationResult(models.Model):
    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    benchmark = models.CharField(max_length=64)
    language = models.CharField(max_length=16)
    metric = models.CharField(max_length=32, blank=True, help_text=_("empty on a skipped row"))
    value = models.FloatField(null=True, blank=True, help_text=_("empty when not measurable"))
    n = models.PositiveIntegerField(default=0, help_text=_("examples the value is computed over"))
    skipped = models.BooleanField(default=False)
    reason = models.CharField(max_length=500, blank=True,
                              help_text=_("why the row has no value: skipped, or e.g. 'spBLEU: model missing'"))
    # How the value was computed, so it can be reproduced and compared with a paper: sacrebleu's signature for BLEU,
    # spBLEU and chrF++, the segmenter and stemmer for ROUGE-L, the detector and its thresholds for the off-target
    # rate (evaluation/scoring.py).
    settings = models.JSONField(default=dict, blank=True, help_text=_("how the value was computed"))
    # The off-target rate's three counts (empty for other metrics): its value is off / (on + off), and n = on + off.
    on_target = models.PositiveIntegerField(null=True, blank=True)
    off_target = models.PositiveIntegerField(null=True, blank=True)
    not_measurable = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("outputs whose language could not be judged (left out of the rate)"))

    class Meta:
        ordering = ["run", "benchmark", "language", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["run", "benchmark", "language", "metric"],
                                    name="evaluation_result_unique"),
        ]

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.benchmark}/{self.language}: skipped"
        return f"{self.benchmark}/{self.language} {self.metric} = {self.value}"
