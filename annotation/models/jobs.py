"""Background jobs of the annotation app: item imports and preference exports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models.core import Campaign
from crossfeed.jobs.status import BackgroundJob, JobStatus


class ItemImport(BackgroundJob, models.Model):
    """One run of the item import, and the rows it staged (annotation/services/imports.py; docs/import.md).

    `owner` (host and process id) and `heartbeat_at` tell whether the writing process is still alive: the clean-up
    deletes what a failed or dead import staged.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.RUNNING, db_index=True)
    source = models.CharField(max_length=300, blank=True, help_text=_("where the items came from (file name, API)"))
    owner = models.CharField(max_length=300, help_text=_("host:pid of the process that writes the import"))
    staged = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.campaign_id} ({self.status})"


class Export(BackgroundJob, models.Model):
    """An immutable dataset snapshot: the filters, the judgments as of `cutoff`, the files and their hashes.

    Files are written into a private folder and published (renamed into place) only when complete, so a killed
    worker never leaves a partial file behind a succeeded record.
    """

    class Kind(models.TextChoices):
        PREFERENCE = "preference", _("preference pairs (DPO)")
        SFT = "sft", _("best responses (SFT messages)")

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSONL"
        PARQUET = "parquet", "Parquet"

    class Pairs(models.TextChoices):
        ALL = "all", _("all pairs with a majority")
        BEST_VS_REST = "best_vs_rest", _("consensus best against each other response")
        BEST_VS_WORST = "best_vs_worst", _("consensus best against consensus worst")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PREFERENCE)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSONL)
    pairs = models.CharField(max_length=16, choices=Pairs.choices, default=Pairs.ALL)
    min_judgments = models.PositiveSmallIntegerField(default=2)
    min_agreement = models.FloatField(default=0.0)
    languages = models.JSONField(default=list, blank=True, help_text=_("response languages; empty means all"))
    test_fraction = models.FloatField(default=0.1)
    seed = models.PositiveIntegerField(default=0)
    # Judgments as they stood at this moment; later submissions and revisions are not part of the snapshot.
    cutoff = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    per_language = models.JSONField(default=dict, blank=True)
    language_pairs = models.JSONField(default=list, blank=True)
    agreement = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    # A `weight` column from the annotators' reliability (docs/export.md).
    weights = models.BooleanField(default=False)
    # What the quality controls changed: the exclusions that applied, with the judgments each left out, and how many
    # items a reviewer's final ranking decided (annotation/services/exports.py).
    exclusions = models.JSONField(default=list, blank=True)
    adjudicated = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(min_agreement__gte=0) & Q(min_agreement__lte=1),
                                   name="export_min_agreement_0_1"),
            models.CheckConstraint(condition=Q(test_fraction__gte=0) & Q(test_fraction__lt=1),
                                   name="export_test_fraction_0_1"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.campaign} ({self.get_status_display()})"
