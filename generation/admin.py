"""Generation in the admin: endpoints (checked against the operator's allowlist on save) and generation jobs
(read-only, with their progress and counts; actions cancel and retry). Jobs are started from the generation pages,
a training run's "Next round" or the API, which check every input first."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crossfeed.jobs.admin import BatchJobAdmin
from generation.models import Endpoint, GenerationJob
from generation.services.endpoints import endpoint_check
from generation.services.jobs import generation_job_cancel, generation_job_retry, generation_jobs_fail_stale

ENDPOINT_FIELDS = ["name", "base_url", "model", "api_key_env", "timeout_seconds", "max_retries", "concurrency"]


class EndpointAdminForm(forms.ModelForm):
    # Text, not a URLField: that would put a scheme in front of a URL typed without one, which endpoint_check refuses
    # with the reason instead.
    base_url = forms.CharField(label=_("base URL"), max_length=500,
                               help_text=Endpoint._meta.get_field("base_url").help_text)

    class Meta:
        model = Endpoint
        fields = [*ENDPOINT_FIELDS, "notes"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if any(field in self.errors for field in ENDPOINT_FIELDS):
            return cleaned  # the field's own error says enough
        # The API's rules (the allowed hosts among them), so that the admin cannot store what the API refuses.
        problems = endpoint_check(**{field: cleaned.get(field) for field in ENDPOINT_FIELDS},
                                  endpoint=self.instance if self.instance.pk else None)
        for field, messages_ in problems.items():
            self.add_error(field, messages_)
        return cleaned


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointAdminForm
    list_display = ["name", "base_url", "model", "api_key_env", "timeout_seconds", "max_retries", "concurrency",
                    "created_by", "created_at"]
    search_fields = ["name", "base_url", "model"]
    list_select_related = ["created_by"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(GenerationJob)
class GenerationJobAdmin(BatchJobAdmin):
    list_display = ["id", "status", "progress", "campaign_link", "items_created", "responses_created",
                    "off_target_count", "duplicates_merged", "skipped_count", "failure_count", "created_by",
                    "created_at", "page"]
    list_filter = ["status", "off_target"]
    list_select_related = ["campaign", "created_by"]
    search_fields = ["id", "campaign_name", "campaign__name", "error"]
    fields = ["page", "status", "progress", "error", "campaign_link", "campaign_name", "campaign_overlap",
              "items_created", "responses_created", "off_target", "off_target_count", "duplicates_merged",
              "empty_count", "truncated_count", "skipped_count", "skipped", "failure_count", "failures",
              "throughput", "generators", "prompt_source", "source_campaign", "response_languages",
              "languages_per_prompt", "samples_per_generator", "params", "instruction_template", "training_run",
              "output_dir", "worker", "attempts", "cancel_requested", "created_by", "created_at", "started_at",
              "finished_at", "heartbeat_at"]
    readonly_fields = fields
    act_permission = "generation.change_generationjob"
    live_page = "generation:job"
    cancel = staticmethod(generation_job_cancel)
    retry = staticmethod(generation_job_retry)
    fail_stale = staticmethod(generation_jobs_fail_stale)

    @admin.display(description=_("campaign"))
    def campaign_link(self, obj: GenerationJob) -> str:
        if obj.campaign_id is None:
            return obj.campaign_name or "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:annotation_campaign_change", args=[obj.campaign_id]),
                           obj.campaign.name)
