"""The admin's "New training run" form. It checks types and choices; training_run_create checks the rest (which
export fits which kind, every parameter) and its errors are put on these fields."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.models import Export, JobStatus
from crossfeed.errors import InvalidInput
from crossfeed.parsers import JSONFormField
from instructions.models import InstructionExport
from training.models import BaseModel, ModelVersion, TrainingRun
from training.services.registry import check_base_model_name, check_model_path
from training.services.runs import STAGE_CONFIG, params_template

# Where a service error about one of training_run_create's arguments belongs on this form.
SERVICE_FIELDS = {"sft_file": "sft_upload", "sft_data": "sft_export"}


class ParamsField(JSONFormField):
    """JSON shown indented: the prefilled presets are meant to be read and edited. JSONFormField: a lone surrogate
    or nesting too deep for the parser is a form error, not a 500."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ExportChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, export: Export) -> str:
        return _("Export %(id)d of %(campaign)s: %(rows)d rows, %(date)s") % {
            "id": export.id, "campaign": export.campaign.name, "rows": export.rows,
            "date": f"{export.finished_at or export.created_at:%Y-%m-%d %H:%M}"}


class InstructionExportChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, export: InstructionExport) -> str:
        return _("Export %(id)d of %(set)s: %(rows)d rows in %(languages)s, %(date)s") % {
            "id": export.id, "set": export.instruction_set.name, "rows": export.rows,
            "languages": ", ".join(export.languages),
            "date": f"{export.finished_at or export.created_at:%Y-%m-%d %H:%M}"}


class TrainingRunForm(forms.Form):
    kind = forms.ChoiceField(choices=TrainingRun.Kind.choices, initial=TrainingRun.Kind.DPO)
    base_model = forms.ModelChoiceField(BaseModel.objects.all())
    start_version = forms.ModelChoiceField(
        ModelVersion.objects.filter(kind="sft").select_related("base_model"), required=False,
        help_text=_("DPO only: train on top of this SFT version instead of the bare base model."),
    )
    export = ExportChoiceField(
        Export.objects.filter(kind=Export.Kind.PREFERENCE, status=JobStatus.SUCCEEDED).select_related("campaign"),
        required=False, label=_("Preference export"), help_text=_("The DPO data (its train split)."),
    )
    sft_export = ExportChoiceField(
        Export.objects.filter(kind=Export.Kind.SFT, status=JobStatus.SUCCEEDED).select_related("campaign"),
        required=False, label=_("SFT export"), help_text=_("The SFT data: an SFT export …"),
    )
    sft_dataset = InstructionExportChoiceField(
        InstructionExport.objects.filter(status=JobStatus.SUCCEEDED).select_related("instruction_set"),
        required=False, label=_("… or an instruction set export"),
        help_text=_("A translated instruction set's SFT export: all its languages (sft-all.jsonl), or its one "
                    "language file."),
    )
    sft_upload = forms.FileField(
        required=False, label=_("… or an SFT file"),
        help_text=_('JSONL, one {"messages": [{"role": "user", "content": "…"}, …]} per line.'),
    )
    num_processes = forms.IntegerField(min_value=1, max_value=64, initial=1,
                                       help_text=_("More than 1: the worker starts the scripts with accelerate."))
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=42)
    params = ParamsField(
        required=False, label=_("Parameters"),
        widget=forms.Textarea(attrs={"rows": 24, "cols": 90, "spellcheck": "false"}),
        help_text=_('TRL/PEFT settings over the presets ("preset": "scaled", the default, fits the batch, warm-up and '
                    'logging to the data; "paper" is the paper\'s settings): top-level keys apply to every stage, '
                    'keys under "sft" or "dpo" to that stage; "accelerate_config" picks cpu, single_gpu, multi_gpu '
                    'or zero3.'),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and "params" not in self.initial:
            self.initial["params"] = params_template(self.initial.get("kind") or self.fields["kind"].initial)

    def clean_params(self) -> dict:
        params = self.cleaned_data.get("params")
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise forms.ValidationError(_('Expected a JSON object such as {"max_steps": 100, "dpo": {"beta": 0.1}}.'))
        return params

    def clean(self) -> dict:
        cleaned = super().clean()
        given = [name for name in ("sft_export", "sft_dataset", "sft_upload") if cleaned.get(name)]
        if len(given) > 1:
            self.add_error(given[-1], _("Choose one kind of SFT data: an SFT export, an instruction set export or an "
                                        "uploaded file."))
        kind = cleaned.get("kind")
        if kind and isinstance(cleaned.get("params"), dict):
            # The textarea may still hold the other kind's stage (the prefill follows the kind chosen first).
            stages = {"sft", "dpo"} if kind == TrainingRun.Kind.SFT_DPO else {kind}
            cleaned["params"] = {key: value for key, value in cleaned["params"].items()
                                 if key not in STAGE_CONFIG or key in stages}
        return cleaned

    def service_arguments(self, *, sft_file: str = "") -> dict:
        """Keyword arguments for training_run_create (the upload is stored by the caller, giving sft_file)."""
        data = self.cleaned_data
        return {"kind": data["kind"], "base_model": data["base_model"], "start_version": data["start_version"],
                "export": data["export"], "sft_export": data["sft_export"], "sft_dataset": data["sft_dataset"],
                "sft_file": sft_file,
                "params": data["params"], "num_processes": data["num_processes"], "seed": data["seed"]}

    def add_service_error(self, exc: InvalidInput) -> None:
        field = SERVICE_FIELDS.get(exc.field or "", exc.field)
        self.add_error(field if field in self.fields else None, exc.message)


class BaseModelForm(forms.ModelForm):
    """The admin's add form, with base_model_register's rules: a unique name, a model folder or a hub id."""

    class Meta:
        model = BaseModel
        fields = ["name", "path", "chat_template_name", "chat_template", "notes"]

    def clean_name(self) -> str:
        return _validated(check_base_model_name, self.cleaned_data.get("name", ""),
                          exclude=self.instance.pk if self.instance.pk else None)

    def clean_path(self) -> str:
        return _validated(check_model_path, self.cleaned_data.get("path", ""))


def _validated(check, value, **kwargs):
    try:
        return check(value, **kwargs)
    except InvalidInput as exc:
        raise forms.ValidationError(exc.message) from None
