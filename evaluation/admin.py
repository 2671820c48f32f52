from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crossfeed.errors import CrossfeedError
from evaluation.forms import EvaluationRunForm
from evaluation.models import BenchmarkSource, EvaluationResult, EvaluationRun
from evaluation.services import (
    benchmark_source_set,
    evaluation_run_cancel,
    evaluation_run_create,
    evaluation_run_retry,
    evaluation_runs_fail_stale,
)
from evaluation.services.sources import source_names


class BenchmarkSourceAdminForm(forms.ModelForm):
    name = forms.ChoiceField(choices=lambda: [(name, name) for name in source_names()],
                             help_text=_("a benchmark, or a dataset shared by several (flores200: both directions)"))

    class Meta:
        model = BenchmarkSource
        fields = ["name", "path", "notes"]

    def clean_path(self) -> str:
        path = Path(self.cleaned_data["path"].strip()).expanduser()
        if not path.is_absolute() or not path.is_dir():
            raise forms.ValidationError(_("An absolute path to an existing folder on this machine."))
        return str(path)


@admin.register(BenchmarkSource)
class BenchmarkSourceAdmin(admin.ModelAdmin):
    form = BenchmarkSourceAdminForm
    list_display = ["name", "path", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        # Through the service, which the form's checks already satisfied: one row per name, stamped.
        obj.pk = benchmark_source_set(name=obj.name, path=obj.path, notes=obj.notes).pk


class ResultInline(admin.TabularInline):
    model = EvaluationResult
    extra = 0
    can_delete = False
    fields = ["benchmark", "language", "metric", "value", "n", "skipped", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "evaluated_model", "benchmark_list", "status", "progress", "trigger", "created_at",
                    "results_page"]
    list_filter = ["status", "trigger"]
    search_fields = ["model_version__name", "base_model__name"]
    inlines = [ResultInline]
    actions = ["retry_runs", "cancel_runs"]
    readonly_fields = [f.name for f in EvaluationRun._meta.fields]

    def get_queryset(self, request):
        evaluation_runs_fail_stale()
        return super().get_queryset(request).select_related("model_version", "base_model")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a run is what it was created as; Retry and Cancel are the actions

    # Not named `model`: ModelAdmin.__init__ sets self.model to the model class, which would hide such a method and
    # make the list call EvaluationRun(obj) for every row.
    @admin.display(description=_("model"))
    def evaluated_model(self, obj) -> str:
        return obj.model_label

    @admin.display(description=_("benchmarks"))
    def benchmark_list(self, obj) -> str:
        return ", ".join(obj.benchmarks)

    @admin.display(description=_("progress"))
    def progress(self, obj) -> str:
        return f"{obj.progress_done}/{obj.progress_total}"

    @admin.display(description=_("results"))
    def results_page(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("evaluation:run", args=[obj.pk]), _("open"))

    @admin.action(description=_("Retry (continue after the saved outputs)"))
    def retry_runs(self, request, queryset) -> None:
        self._each(request, queryset, evaluation_run_retry, _("queued again"))

    @admin.action(description=_("Cancel"))
    def cancel_runs(self, request, queryset) -> None:
        self._each(request, queryset, evaluation_run_cancel, _("cancel requested"))

    def _each(self, request, queryset, service, done) -> None:
        for run in queryset:
            try:
                service(run=run)
            except CrossfeedError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{run}: {done}", messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        """Start a run through the same service as the API; a bad benchmark file is shown with its line."""
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = EvaluationRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = evaluation_run_create(created_by=request.user, **form.run_arguments())
            except CrossfeedError as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, exc.message)
            else:
                messages.success(request, _("Evaluation %d queued; a worker of the evaluation queue runs it.")
                                 % run.pk)
                return redirect("evaluation:run", run.pk)
        context = {**self.admin_site.each_context(request), "title": _("Start an evaluation"), "form": form,
                   "opts": self.model._meta}
        return render(request, "evaluation/admin_new_run.html", context)
