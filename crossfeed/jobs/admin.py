"""What the admin of background jobs shares: an action run on every selected job (training runs, generation and
translation jobs), and the read-only admin of the jobs that crossfeed/jobs/lifecycle.py runs in batches (generation
and translation jobs: their progress, their live page, Cancel and Retry). Nothing is registered here; each app
registers its own ModelAdmin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crossfeed.errors import CrossfeedError


def each_job(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: models.QuerySet,
             action: Callable[[Any], Any], done: str) -> None:
    """Apply `action` (a service: cancel, retry) to every selected job, one message each: `done` with the job's id,
    or why the service refused it, as a warning, since the other jobs went on."""
    for job in queryset:
        try:
            action(job)
        except CrossfeedError as exc:
            modeladmin.message_user(request, exc.message, messages.WARNING)
        else:
            modeladmin.message_user(request, done % {"id": job.id}, messages.SUCCESS)


class BatchJobAdmin(admin.ModelAdmin):
    """A job of crossfeed/jobs/lifecycle.py, read-only: it is started from its app's pages or the API, which check
    every input, and changes only through the actions Cancel and Retry (the app's services). A subclass names the
    permission those actions need (`act_permission`), the URL of the job's live page (`live_page`) and its
    services (`cancel`, `retry` and `fail_stale`, as staticmethods)."""

    actions = ["cancel_jobs", "retry_jobs"]
    act_permission: str
    live_page: str
    cancel: Callable[..., Any]
    retry: Callable[..., Any]
    fail_stale: Callable[[], Any]

    def get_queryset(self, request):
        self.fail_stale()  # a job whose worker died shows as failed, with the reason
        return super().get_queryset(request)

    def has_add_permission(self, request) -> bool:
        return False  # started from the app's pages or the API, which check every input

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # jobs change only through their actions

    def has_act_permission(self, request) -> bool:
        return request.user.has_perm(self.act_permission)

    @admin.display(description=_("progress"))
    def progress(self, obj) -> str:
        return format_html('<progress max="100" value="{}"></progress> {} / {}', obj.percent, obj.progress_done,
                           obj.progress_total)

    @admin.display(description=_("page"))
    def page(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse(self.live_page, args=[obj.id]), _("watch"))

    @admin.action(description=_("Cancel the selected jobs (a running job stops after its current batch)"),
                  permissions=["act"])
    def cancel_jobs(self, request, queryset) -> None:
        each_job(self, request, queryset, lambda job: self.cancel(job=job),
                 _("Job %(id)d: cancelled or cancel requested."))

    @admin.action(description=_("Retry the selected failed or cancelled jobs (continue after their outputs)"),
                  permissions=["act"])
    def retry_jobs(self, request, queryset) -> None:
        each_job(self, request, queryset, lambda job: self.retry(job=job), _("Job %(id)d queued again."))
