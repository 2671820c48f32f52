"""Generation in the admin: endpoints (checked against the operator's allowlist on save) and generation jobs
(read-only, with their progress and counts; actions cancel and retry). Jobs are started from the generation pages,
a training run's "Next round" or the API, which check every input first."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crossfeed.errors import CrossfeedError
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
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "progress", "campaign_link", "items_created", "responses_created",
                    "off_target_count", "duplicates_merged", "skipped_count", "failure_count", "created_by",
                    "created_at", "page"]
    list_filter = ["status", "off_target"]
    list_select_related = ["campaign", "created_by"]
    search_fields = ["id", "campaign_name", "campaign__name", "error"]
    actions = ["cancel_jobs", "retry_jobs"]
    fields = ["page", "status", "progress", "error", "campaign_link", "campaign_name", "campaign_overlap",
              "items_created", "responses_created", "off_target", "off_target_count", "duplicates_merged",
              "empty_count", "truncated_count", "skipped_count", "skipped", "failure_count", "failures",
              "throughput", "generators", "prompt_source", "source_campaign", "response_languages",
              "languages_per_prompt", "samples_per_generator", "params", "instruction_template", "training_run",
              "output_dir", "worker", "attempts", "cancel_requested", "created_by", "created_at", "started_at",
              "finished_at", "heartbeat_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        generation_jobs_fail_stale()  # a job whose worker died shows as failed, with the reason
        return super().get_queryset(request)

    def has_add_permission(self, request) -> bool:
        return False  # started from the generation pages, "Next round" or the API, which check every input

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # jobs change only through their actions

    def has_act_permission(self, request) -> bool:
        return request.user.has_perm("generation.change_generationjob")

    @admin.display(description=_("progress"))
    def progress(self, obj: GenerationJob) -> str:
        return format_html('<progress max="100" value="{}"></progress> {} / {}', obj.percent, obj.progress_done,
                           obj.progress_total)

    @admin.display(description=_("campaign"))
    def campaign_link(self, obj: GenerationJob) -> str:
        if obj.campaign_id is None:
            return obj.campaign_name or "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:annotation_campaign_change", args=[obj.campaign_id]),
                           obj.campaign.name)

    @admin.display(description=_("page"))
    def page(self, obj: GenerationJob) -> str:
        return format_html('<a href="{}">{}</a>', reverse("generation:job", args=[obj.id]), _("watch"))

    @admin.action(description=_("Cancel the selected jobs (a running job stops after its current batch)"),
                  permissions=["act"])
    def cancel_jobs(self, request, queryset) -> None:
        self._each(request, queryset, generation_job_cancel, _("Job %(id)d: cancelled or cancel requested."))

    @admin.action(description=_("Retry the selected failed or cancelled jobs (continue after their outputs)"),
                  permissions=["act"])
    def retry_jobs(self, request, queryset) -> None:
        self._each(request, queryset, generation_job_retry, _("Job %(id)d queued again."))

    def _each(self, request, queryset, service, done) -> None:
        for job in queryset:
            try:
                service(job=job)
            except CrossfeedError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, done % {"id": job.id}, messages.SUCCESS)
