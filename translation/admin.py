"""Translation in the admin: translators (added through the same checks as the API: translation/services/
translators.py; a seq2seq model's tokenizer is read then and its languages recorded) and translation jobs (read-only,
with their progress and report; actions cancel and retry). Jobs are started from the translation pages or the API,
which check every input first."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crossfeed.errors import CrossfeedError
from crossfeed.jobs.admin import BatchJobAdmin
from translation.models import TranslationJob, Translator
from translation.services.jobs import translation_job_cancel, translation_job_retry, translation_jobs_fail_stale
from translation.services.translators import PROMPT_TEMPLATE, translator_check

TRANSLATOR_FIELDS = ["name", "kind", "base_model", "model_version", "endpoint", "path", "prompt_template",
                     "max_new_tokens", "notes"]
CHECKED_FIELDS = [name for name in TRANSLATOR_FIELDS if name != "notes"]


class TranslatorAdminForm(forms.ModelForm):
    """The add form: the service's rules (one model per kind, a local folder, an allowed host, a template with
    {source}, {target} and {text}, a tokenizer with FLORES-200 tokens), its messages on the fields they are about."""

    class Meta:
        model = Translator
        fields = TRANSLATOR_FIELDS
        widgets = {"prompt_template": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "prompt_template": _("llm and endpoint: {source}, {target} and {text} are filled in. Empty: the default "
                                 "prompt (docs/translation.md)."),
            "path": _("seq2seq only: a local model folder (NLLB-200 style, or its CTranslate2 conversion), or a hub "
                      "id already in the local cache; its tokenizer is read now, never downloaded."),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checked: dict[str, Any] = {}
        if "prompt_template" in self.fields:
            self.fields["prompt_template"].widget.attrs["placeholder"] = PROMPT_TEMPLATE

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk is not None:
            return cleaned  # once added, only the notes change (TranslatorAdmin.get_readonly_fields)
        if any(name in self.errors for name in CHECKED_FIELDS):
            return cleaned  # the field's own error says enough
        related = {name: getattr(cleaned.get(name), "pk", None) for name in ("base_model", "model_version",
                                                                           "endpoint")}
        try:
            self.checked = translator_check(
                name=cleaned.get("name") or "", kind=cleaned.get("kind"), path=cleaned.get("path") or "",
                prompt_template=cleaned.get("prompt_template") or "", max_new_tokens=cleaned.get("max_new_tokens"),
                **related)
        except CrossfeedError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return cleaned


@admin.register(Translator)
class TranslatorAdmin(admin.ModelAdmin):
    form = TranslatorAdminForm
    list_display = ["name", "kind", "model", "language_count", "max_new_tokens", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "path", "notes"]
    list_select_related = ["base_model", "model_version", "endpoint", "created_by"]
    readonly_fields = ["languages", "created_by", "created_at"]

    def get_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return TRANSLATOR_FIELDS
        return [*TRANSLATOR_FIELDS, "languages", "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return []
        # Checked once, when added: a job runs its translators by id, so a changed model or prompt would change
        # what a retried job translates with. Another model or prompt is another translator; notes stay editable.
        return [*CHECKED_FIELDS, "languages", "created_by", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            for name, value in form.checked.items():
                setattr(obj, name, value)  # as the service stores them: stripped, the default prompt, languages
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("model"))
    def model(self, obj: Translator) -> str:
        source = obj.base_model or obj.model_version or obj.endpoint
        return str(source) if source is not None else obj.path

    @admin.display(description=_("known languages"))
    def language_count(self, obj: Translator) -> str:
        return str(len(obj.languages)) if obj.kind == Translator.Kind.SEQ2SEQ else "—"


@admin.register(TranslationJob)
class TranslationJobAdmin(BatchJobAdmin):
    list_display = ["id", "status", "progress", "instruction_set", "language_list", "translator_list",
                    "failure_count", "created_by", "created_at", "page"]
    list_filter = ["status"]
    list_select_related = ["instruction_set", "created_by"]
    search_fields = ["id", "instruction_set__name", "error"]
    fields = ["page", "status", "progress", "error", "instruction_set", "languages", "translators",
              "quality_threshold", "per_language", "throughput", "failure_count", "failures", "output_dir", "worker",
              "attempts", "cancel_requested", "created_by", "created_at", "started_at", "finished_at",
              "heartbeat_at"]
    readonly_fields = fields
    act_permission = "translation.change_translationjob"
    live_page = "translation:job"
    cancel = staticmethod(translation_job_cancel)
    retry = staticmethod(translation_job_retry)
    fail_stale = staticmethod(translation_jobs_fail_stale)

    @admin.display(description=_("languages"))
    def language_list(self, obj: TranslationJob) -> str:
        codes = obj.languages or []
        return ", ".join(codes) if len(codes) <= 8 else _("%(n)d languages") % {"n": len(codes)}

    @admin.display(description=_("translators"))
    def translator_list(self, obj: TranslationJob) -> str:
        return ", ".join(str(entry.get("label", "?")) for entry in obj.translators or [])
