"""Candidate generation: models (base models, versions, OpenAI-compatible endpoints) answer prompts in other
languages, the answers are checked by machine (language, script, duplicates, empty or cut-off output), and become the
items of a campaign. A job started from a succeeded training run ("Next round") is one link of a round:
campaign -> export -> training run -> model version -> evaluation -> generation job -> next campaign.

Every model output is appended to the job's outputs JSONL as soon as it exists, so a cancelled or crashed job keeps
what it did and a retry continues after it; the campaign's items are written only at the end, through the staged
import, so annotators never see a half-made campaign.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import Campaign
from crossfeed.jobs.status import BackgroundJob, JobStatus
from training.models import TrainingRun


class Endpoint(models.Model):
    """An OpenAI-compatible chat-completions server (a hosted model, or a local vLLM server). Requests go only to
    hosts the operator allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS); the key is read on the worker from the
    environment variable named here, never stored in the database."""

    name = models.CharField(max_length=200, unique=True)
    base_url = models.URLField(_("base URL"), max_length=500,
                               help_text=_("up to and including /v1, e.g. http://127.0.0.1:8001/v1"))
    model = models.CharField(_("model name at the endpoint"), max_length=200)
    api_key_env = models.CharField(
        _("API key variable"), max_length=100, blank=True,
        help_text=_("name of the environment variable on the worker that holds the key; empty: no key"))
    timeout_seconds = models.FloatField(default=60.0, help_text=_("per request, 1–600"))
    max_retries = models.PositiveSmallIntegerField(default=2, help_text=_("after a timeout, 429 or 5xx; 0–10"))
    concurrency = models.PositiveSmallIntegerField(default=4, help_text=_("requests in flight at once, 1–64"))
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(timeout_seconds__gte=1, timeout_seconds__lte=600),
                                   name="endpoint_timeout_1_600"),
            models.CheckConstraint(condition=Q(max_retries__lte=10), name="endpoint_retries_0_10"),
            models.CheckConstraint(condition=Q(concurrency__gte=1, concurrency__lte=64),
                                   name="endpoint_concurrency_1_64"),
        ]

    def __str__(self) -> str:
        return self.name


class GenerationJob(BackgroundJob, models.Model):
    class OffTarget(models.TextChoices):
        KEEP = "keep", _("keep, with the wrong-language flag pre-set for annotators to confirm")
        DROP = "drop", _("drop")

    # As given, each with its resolved "label" (the name responses carry): [{"base_model": id, "label": ..} |
    # {"model_version": id, ..} | {"endpoint": id, ..}].
    generators = models.JSONField(default=list)
    # Where the prompts came from: {"campaign": id} or {"items": n} (uploaded or posted; kept in prompts.jsonl).
    prompt_source = models.JSONField(default=dict)
    source_campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="generation_sources")
    # As given: a list of codes for every prompt language, {"<prompt lang>": [codes]}, or empty for the default (the
    # feedback languages other than the prompt's). Each prompt's own languages are resolved at creation, in
    # prompts.jsonl.
    response_languages = models.JSONField(default=list, blank=True)
    languages_per_prompt = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("response languages sampled per prompt; empty: all of them"))
    samples_per_generator = models.PositiveSmallIntegerField(default=1)
    params = models.JSONField(default=dict, blank=True, help_text=_("temperature, top_p, max_new_tokens, seed"))
    instruction_template = models.TextField(
        blank=True, help_text=_("how the prompt asks for the response language (recorded with every response)"))
    off_target = models.CharField(max_length=4, choices=OffTarget.choices, default=OffTarget.KEEP)
    # The campaign the items go to: an existing one (set at creation), or a new one named here (set when made).
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="generation_jobs")
    campaign_name = models.CharField(max_length=200, blank=True)
    campaign_overlap = models.PositiveSmallIntegerField(null=True, blank=True)
    # Set when the job is the next round of a succeeded training run.
    training_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="next_rounds")

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    responses_created = models.PositiveIntegerField(default=0)
    off_target_count = models.PositiveIntegerField(default=0, help_text=_("candidates detected in another language"))
    duplicates_merged = models.PositiveIntegerField(default=0)
    empty_count = models.PositiveIntegerField(default=0)
    truncated_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text=_("[{external_id, reason}], capped"))
    skipped_count = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text=_("[{external_id, generator, message}], capped"))
    failure_count = models.PositiveIntegerField(default=0)
    throughput = models.JSONField(default=dict, blank=True,
                                  help_text=_("per generator: prompts, new_tokens, seconds, prompts/s, tokens/s"))
    error = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
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
            models.CheckConstraint(condition=Q(samples_per_generator__gte=1, samples_per_generator__lte=16),
                                   name="generation_job_samples_1_16"),
        ]

    def __str__(self) -> str:
        return f"generation job {self.pk}"

    @property
    def percent(self) -> float:
        return round(100 * self.progress_done / self.progress_total, 1) if self.progress_total else 0.0
