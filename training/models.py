"""Model registry and training runs.

A ModelVersion is created only after its run's manifest.json exists (the script writes it last), so every
version in the registry has complete artifacts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import BackgroundJob, Export, JobStatus


class ChatTemplateName(models.TextChoices):
    """The named templates of training/scripts/chat_templates.py, which training and evaluation both apply."""

    AUTO = "auto", _("the tokenizer's own; Question/Answer when it has none")
    QUESTION_ANSWER = "question_answer", _("Question/Answer (the seed paper's format)")
    ALPACA = "alpaca", _("Alpaca (### Instruction / ### Response)")


class BaseModel(models.Model):
    name = models.CharField(max_length=200, unique=True)
    path = models.CharField(_("local path or hub id"), max_length=500)
    chat_template_name = models.CharField(
        _("chat template"), max_length=20, choices=ChatTemplateName.choices, default=ChatTemplateName.AUTO,
        help_text=_("the template prompts are written in, in training and in evaluation alike"),
    )
    chat_template = models.TextField(
        _("custom chat template"), blank=True,
        help_text=_("a Jinja chat template that replaces the one chosen above; empty: the one chosen above"),
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrainingRun(BackgroundJob, models.Model):
    class Kind(models.TextChoices):
        SFT = "sft", "SFT"
        DPO = "dpo", "DPO"
        SFT_DPO = "sft_dpo", _("SFT, then DPO on its result")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="runs")
    start_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="continued_by",
        help_text=_("train on top of this version instead of the bare base model"),
    )
    export = models.ForeignKey(Export, null=True, blank=True, on_delete=models.PROTECT, related_name="dpo_runs",
                               help_text=_("preference export (DPO data)"))
    sft_export = models.ForeignKey(Export, null=True, blank=True, on_delete=models.PROTECT, related_name="sft_runs",
                                   help_text=_("SFT export (messages rows)"))
    # The third form of SFT data: a translated instruction set's export (instructions/services/exports.py). A
    # string reference: the instructions app's models import nothing of training.
    sft_dataset = models.ForeignKey("instructions.InstructionExport", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="training_runs",
                                    help_text=_("instruction set SFT export (messages rows per language)"))
    sft_file = models.CharField(max_length=500, blank=True, help_text=_("an uploaded SFT file (messages rows)"))
    params = models.JSONField(default=dict, blank=True, help_text=_("overrides of the presets, per stage"))
    resolved = models.JSONField(default=dict, blank=True, help_text=_("the full config of each stage"))
    num_processes = models.PositiveSmallIntegerField(default=1)
    seed = models.PositiveIntegerField(default=42)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    stage = models.CharField(max_length=4, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    output_dir = models.CharField(max_length=500, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text=_("host:pid of the worker running it"))
    process_group = models.IntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(num_processes__gte=1, num_processes__lte=64),
                                   name="training_run_processes_1_64"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run {self.pk} on {self.base_model}"

    @property
    def stages(self) -> list[str]:
        return ["sft", "dpo"] if self.kind == self.Kind.SFT_DPO else [self.kind]

    @property
    def percent(self) -> float:
        return round(100 * self.step / self.total_steps, 1) if self.total_steps else 0.0


class TrainingMetric(models.Model):
    """One line of a stage's metrics.jsonl, copied into the database while the run goes."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics")
    stage = models.CharField(max_length=4)
    line = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    event = models.CharField(max_length=20)
    values = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "stage", "line"]
        constraints = [models.UniqueConstraint(fields=["run", "stage", "line"], name="metric_unique_line")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.stage} step {self.step}"


class ModelVersion(models.Model):
    name = models.CharField(max_length=200, unique=True)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="versions")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")
    kind = models.CharField(max_length=4)
    adapter_path = models.CharField(max_length=500)
    export = models.ForeignKey(Export, null=True, blank=True, on_delete=models.PROTECT, related_name="versions")
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    manifest = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name
