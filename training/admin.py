"""Training in the admin: base models, model versions (read-only), runs (read-only, with actions), the "New training
run" form, and the action "Train on this export" on the annotation app's exports (added from here, because
annotation/ never imports training/)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

import annotation.admin  # noqa: F401 - registers ExportAdmin, which train_on_export is added to below
from annotation.models import Export, JobStatus
from crossfeed.errors import CrossfeedError, InvalidInput
from crossfeed.jobs.admin import each_job
from training.forms import BaseModelForm, TrainingRunForm
from training.models import BaseModel, ModelVersion, TrainingRun
from training.services.runs import (
    training_run_cancel,
    training_run_create,
    training_run_retrain,
    training_run_retry,
    training_runs_fail_stale,
)
from training.services.uploads import sft_upload_store


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    fk_name = "base_model"
    extra = 0
    fields = ["name", "kind", "parent", "adapter_path", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # versions come only from finished runs


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    form = BaseModelForm
    list_display = ["name", "path", "chat_template_name", "version_count", "created_by", "created_at"]
    search_fields = ["name", "path"]
    list_select_related = ["created_by"]
    inlines = [ModelVersionInline]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # Name and path are fixed once registered: the versions trained from the model record them.
        return ["name", "path", "created_by", "created_at"] if obj else ["created_by", "created_at"]

    @admin.display(description=_("versions"))
    def version_count(self, obj: BaseModel) -> int:
        return obj.versions.count()

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "base_model", "kind", "parent", "run_link", "export", "created_at"]
    list_filter = ["base_model", "kind"]
    search_fields = ["name", "adapter_path", "dataset_sha256"]
    list_select_related = ["base_model", "parent", "run", "export", "export__campaign"]
    fields = ["name", "base_model", "kind", "parent", "run_link", "adapter_path", "export", "dataset_sha256",
              "config", "metrics", "manifest", "created_at"]
    readonly_fields = fields

    @admin.display(description=_("run"))
    def run_link(self, obj: ModelVersion) -> str:
        if obj.run_id is None:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("training:run", args=[obj.run_id]), obj.run_id)

    def has_add_permission(self, request) -> bool:
        return False  # registered by the worker when a stage's manifest exists

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a version is the record of an adapter and of the data it was trained on


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "base_model", "status", "stage", "progress", "created_by", "created_at", "live"]
    list_filter = ["status", "kind", "base_model"]
    list_select_related = ["base_model", "created_by"]
    search_fields = ["id", "base_model__name", "error"]
    actions = ["cancel_runs", "retry_runs", "retrain_with_newest_export", "next_round"]
    change_list_template = "admin/training/trainingrun/change_list.html"
    fields = ["live", "kind", "base_model", "start_version", "export", "sft_export", "sft_dataset", "sft_file",
              "status", "stage", "progress", "error", "log_tail", "params", "resolved", "num_processes", "seed",
              "output_dir", "worker", "attempts", "cancel_requested", "created_by", "created_at", "started_at",
              "finished_at", "heartbeat_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        training_runs_fail_stale()  # a run whose worker died shows as failed, with the reason
        return super().get_queryset(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # runs change only through their actions

    @admin.display(description=_("progress"))
    def progress(self, obj: TrainingRun) -> str:
        return format_html('<progress max="100" value="{}"></progress> {} / {}', obj.percent, obj.step,
                           obj.total_steps)

    @admin.display(description=_("live page"))
    def live(self, obj: TrainingRun) -> str:
        return format_html('<a href="{}">{}</a>', reverse("training:run", args=[obj.id]), _("watch"))

    @admin.action(description=_("Cancel the selected runs"))
    def cancel_runs(self, request, queryset) -> None:
        each_job(self, request, queryset, lambda run: training_run_cancel(run=run), _("Run %(id)d: cancel requested."))

    @admin.action(description=_("Retry the selected failed or cancelled runs (resume from the last checkpoint)"))
    def retry_runs(self, request, queryset) -> None:
        each_job(self, request, queryset, lambda run: training_run_retry(run=run), _("Run %(id)d queued again."))

    @admin.action(description=_("Retrain with newest export (same kind, base model and parameters)"))
    def retrain_with_newest_export(self, request, queryset) -> None:
        for run in queryset.select_related("base_model", "start_version", "export", "sft_export", "sft_dataset"):
            try:
                new = training_run_retrain(run=run, created_by=request.user)
            except CrossfeedError as exc:
                self.message_user(request, _("Run %(id)d: %(message)s") % {"id": run.id, "message": exc.message},
                                  messages.ERROR)
            else:
                data = new.export or new.sft_export or new.sft_dataset
                self.message_user(request, _("Run %(new)d queued like run %(old)d, on %(data)s.")
                                  % {"new": new.id, "old": run.id, "data": data or new.sft_file}, messages.SUCCESS)

    @admin.action(description=_("Next round: generate the next campaign with the trained version"))
    def next_round(self, request, queryset) -> HttpResponseRedirect | None:
        """The defaults of generation's next_round_create (docs/generation.md); the run page's "More options" has
        the others. Imported here, not at the top: training does not depend on the generation app."""
        from generation.services.rounds import next_round_create

        if not request.user.has_perm("generation.add_generationjob"):
            self.message_user(request, _("Starting a next round needs the permission generation.add_generationjob."),
                              messages.ERROR)
            return None
        created = []
        for run in queryset.select_related("base_model", "export__campaign", "sft_export__campaign")[:20]:
            try:
                created.append(next_round_create(run=run, created_by=request.user))
            except CrossfeedError as exc:
                self.message_user(request, _("Run %(id)d: %(message)s") % {"id": run.id, "message": exc.message},
                                  messages.ERROR)
        for job in created:
            self.message_user(request, _("Run %(run)d: generation job %(job)d queued; it makes the campaign "
                                         "“%(name)s”.") % {"run": job.training_run_id, "job": job.id,
                                                           "name": job.campaign_name}, messages.SUCCESS)
        if len(created) == 1:
            return HttpResponseRedirect(reverse("generation:job", args=[created[0].id]))
        return None

    def get_urls(self):
        own = [path("new/", self.admin_site.admin_view(self.new_run_view), name="training_trainingrun_new")]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None) -> HttpResponse:
        # The admin's "Add" button leads to the form that validates and queues a run.
        query = request.GET.urlencode()
        return redirect(reverse("admin:training_trainingrun_new") + (f"?{query}" if query else ""))

    def new_run_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return redirect("admin:index")
        initial = {key: request.GET[key] for key in ("kind", "base_model", "export", "sft_export", "sft_dataset",
                                                     "start_version") if request.GET.get(key)}
        if "sft_dataset" in initial and "kind" not in initial:
            initial["kind"] = TrainingRun.Kind.SFT  # "Train on this" from an instruction set export
        form = TrainingRunForm(request.POST or None, request.FILES or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            run = self._create_run(request, form)
            if run is not None:
                messages.success(request, _("Training run %(id)d queued; a worker on queue “training” runs it.")
                                 % {"id": run.id})
                return redirect("training:run", run_id=run.id)
        # The parameters are prefilled for one kind; these reload the form prefilled for another.
        kind_links = [(label, "?" + urlencode({**initial, "kind": kind})) for kind, label in TrainingRun.Kind.choices]
        context = {**self.admin_site.each_context(request), "title": _("New training run"), "form": form,
                   "kind_links": kind_links, "opts": self.model._meta}
        return render(request, "admin/training/trainingrun/new.html", context)

    def _create_run(self, request: HttpRequest, form: TrainingRunForm) -> TrainingRun | None:
        upload = form.cleaned_data.get("sft_upload")
        stored = ""
        try:
            if upload is not None:
                stored = sft_upload_store(upload=upload).path
            return training_run_create(created_by=request.user, **form.service_arguments(sft_file=stored))
        except InvalidInput as exc:
            if stored:
                Path(stored).unlink(missing_ok=True)  # no run uses it
            form.add_service_error(exc)
            return None


@admin.action(description=_("Train on this export"))
def train_on_export(modeladmin, request, queryset) -> HttpResponseRedirect | None:
    """Open "New training run" with the export chosen: DPO for a preference export, SFT for an SFT export."""
    exports = list(queryset[:2])
    if len(exports) != 1:
        modeladmin.message_user(request, _("Select exactly one export to train on."), messages.WARNING)
        return None
    export = exports[0]
    if export.status != JobStatus.SUCCEEDED:
        modeladmin.message_user(request, _("Export %(id)d is %(status)s; only a finished export can be trained on.")
                                % {"id": export.id, "status": export.get_status_display()}, messages.ERROR)
        return None
    if export.kind == Export.Kind.PREFERENCE:
        query = {"kind": TrainingRun.Kind.DPO, "export": export.id}
    else:
        query = {"kind": TrainingRun.Kind.SFT, "sft_export": export.id}
    return HttpResponseRedirect(f"{reverse('admin:training_trainingrun_new')}?{urlencode(query)}")


_export_admin = admin.site.get_model_admin(Export)
if train_on_export not in (_export_admin.actions or []):
    _export_admin.actions = [*(_export_admin.actions or []), train_on_export]
