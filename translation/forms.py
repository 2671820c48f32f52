"""Forms of the translation pages. They check types and choices and turn the page's fields into the arguments of
translation_job_create, post_edit_campaign_create and instruction_export_create, which check the rest (a language
the set is written in, a seq2seq model without a language's token, a campaign name in use, no usable rows ...);
the services' errors are put back on these fields (add_service_error)."""

from __future__ import annotations

from collections.abc import Sequence

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.languages import all_languages, normalize_language_code
from crossfeed.errors import CrossfeedError
from instructions.models import InstructionSet
from translation.models import Translator
from translation.services.jobs import DEFAULT_THRESHOLD, MAX_TRANSLATORS

# The most codes the typed list takes: the registry has ~110 languages, so every one of them fits.
MAX_TYPED_CODES = 300


def _language_choices() -> list[tuple[str, str]]:
    return [(spec.code, f"{spec.name} ({spec.code})") for spec in all_languages()]


def _translator_choices() -> list[tuple[int, str]]:
    return [(translator.pk, f"{translator.name} ({translator.get_kind_display()})")
            for translator in Translator.objects.all()]


class ServiceErrors(forms.Form):
    """Puts a service's InvalidInput on the field it is about: `service_fields` maps the service's field names (the
    part before any "." or "[") to this form's; an error about an argument the form has no field for goes on top."""

    service_fields: dict[str, str] = {}

    def service_field(self, name: str) -> str | None:
        head = name.split(".")[0].split("[")[0]
        field = self.service_fields.get(head, head)
        return field if field in self.fields else None

    def add_service_error(self, exc: CrossfeedError) -> None:
        # No "field: " prefix on top: the arguments a page has no field for (the job, the set) are named in the
        # services' messages themselves ("translation job 3 has no translation below its threshold ...").
        problems = exc.field_errors or {exc.field or "": [exc.message]}
        for name, messages in problems.items():
            for message in messages:
                self.add_error(self.service_field(name), message)


class TranslationJobForm(ServiceErrors):
    """/translation/new/: one set, its target languages, translators in the order of preference, the threshold and,
    optionally, the post-editing campaign made when the job succeeds."""

    instruction_set = forms.ModelChoiceField(
        InstructionSet.objects.ready().select_related("language"), label=_("Instruction set"),
        help_text=_("Sets whose import finished; an admin imports one in the admin (Instruction sets › Add)."))
    languages = forms.MultipleChoiceField(
        choices=_language_choices, required=False, label=_("Target languages"),
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text=_("Type a language's first letters to jump to it; Ctrl or ⌘ + click chooses several."))
    language_codes = forms.CharField(
        required=False, max_length=4000, label=_("… or their codes, separated by commas"),
        widget=forms.TextInput(attrs={"placeholder": "sw, ar, zh-Hans", "autocomplete": "off", "spellcheck": "false",
                                      "dir": "ltr"}),
        help_text=_("Any of the registry's codes (BCP-47), added after the ones chosen above."))
    translators = forms.TypedMultipleChoiceField(
        choices=_translator_choices, coerce=int, required=False, label=_("Translators"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Each translates every row into every language; per row and language the best-scoring "
                    "acceptable translation is chosen, a tie going to the translator listed first."))
    quality_threshold = forms.FloatField(
        min_value=0, max_value=1, initial=DEFAULT_THRESHOLD, label=_("Quality threshold"),
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("From 0 to 1: chosen translations scoring under it are counted per language and can be sent "
                    "to native speakers for post-editing."))
    post_edit = forms.BooleanField(
        required=False, label=_("When the job succeeds, send the weak translations to native speakers for "
                                "post-editing"))
    post_edit_campaign = forms.CharField(required=False, max_length=200, label=_("Post-editing campaign's name"))
    post_edit_overlap = forms.IntegerField(required=False, min_value=1, max_value=20, initial=1,
                                           label=_("Post-edits wanted per translation"))
    post_edit_audit_rate = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0, label=_("Audit rate"),
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("The share of the good translations sent too, for checking: 0.1 sends one in ten."))

    service_fields = {"instruction_set": "instruction_set", "languages": "languages",
                      "translators": "translators", "quality_threshold": "quality_threshold",
                      "post_edit": "post_edit"}

    def service_field(self, name: str) -> str | None:
        head, _dot, rest = name.partition(".")
        if head == "languages" and (self.data.get("language_codes") or "").strip():
            return "language_codes"  # the select offers known languages only: the typed list is the suspect
        if head == "post_edit":
            part = rest.split(".")[0]
            return {"campaign_name": "post_edit_campaign", "name": "post_edit_campaign",
                    "overlap": "post_edit_overlap", "audit_rate": "post_edit_audit_rate"}.get(part, "post_edit")
        return super().service_field(name)

    def clean_language_codes(self) -> list[str]:
        """The typed codes as given (the service resolves each and names an unknown one), without empties."""
        codes = [code.strip() for code in (self.cleaned_data.get("language_codes") or "").split(",")]
        codes = [code for code in codes if code]
        if len(codes) > MAX_TYPED_CODES:
            raise forms.ValidationError(_("At most %(n)d codes.") % {"n": MAX_TYPED_CODES})
        return codes

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("languages") and not data.get("language_codes") and not self.has_error("language_codes"):
            self.add_error("languages", _("Choose at least one target language, or type its code below."))
        if not data.get("translators") and not self.has_error("translators"):
            self.add_error("translators", _("Choose at least one translator."))
        elif len(data.get("translators") or []) > MAX_TRANSLATORS:
            self.add_error("translators", _("At most %(n)d translators per job.") % {"n": MAX_TRANSLATORS})
        if data.get("post_edit") and not (data.get("post_edit_campaign") or "").strip():
            self.add_error("post_edit_campaign", _("Name the post-editing campaign."))
        return data

    def chosen_languages(self) -> list[str]:
        """The chosen and the typed codes, in that order, each once (a typed alias of a chosen one included)."""
        data = self.cleaned_data
        codes: list[str] = []
        for code in [*data.get("languages", []), *data.get("language_codes", [])]:
            key = normalize_language_code(code) or code
            if key not in codes:
                codes.append(key)
        return codes

    def service_arguments(self) -> dict:
        """Keyword arguments for translation_job_create. The translators in the order the browser sent them: the
        order they are listed in, which decides a tie."""
        data = self.cleaned_data
        post_edit = None
        if data.get("post_edit"):
            post_edit = {"campaign_name": data["post_edit_campaign"].strip(),
                         "overlap": data.get("post_edit_overlap") or 1,
                         "audit_rate": data.get("post_edit_audit_rate") or 0.0}
        return {"instruction_set": data["instruction_set"], "languages": self.chosen_languages(),
                "translators": list(data["translators"]), "quality_threshold": data["quality_threshold"],
                "post_edit": post_edit}


class PostEditForm(ServiceErrors):
    """The job page's "Send to post-editing"."""

    campaign_name = forms.CharField(max_length=200, label=_("Campaign's name"))
    overlap = forms.IntegerField(min_value=1, max_value=20, initial=1, label=_("Post-edits wanted per translation"))
    audit_rate = forms.FloatField(
        min_value=0, max_value=1, initial=0, label=_("Audit rate"), widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("The share of the good translations sent too, for checking: 0.1 sends one in ten."))

    service_fields = {"name": "campaign_name", "campaign": "campaign_name"}

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("prefix", "post-edit")
        super().__init__(*args, **kwargs)

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {"campaign_name": data["campaign_name"].strip(), "overlap": data["overlap"],
                "audit_rate": data["audit_rate"]}


class ExportForm(ServiceErrors):
    """The job page's "Export SFT data": some or all of the job's languages, with or without the source rows."""

    languages = forms.MultipleChoiceField(
        required=False, label=_("Languages"), widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every language of the job."))
    include_source = forms.BooleanField(required=False, initial=True,
                                        label=_("Include the source rows in their own language"))

    def __init__(self, *args, languages: Sequence[tuple[str, str]] = (), **kwargs) -> None:
        kwargs.setdefault("prefix", "export")
        super().__init__(*args, **kwargs)
        self.fields["languages"].choices = list(languages)

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {"languages": list(data["languages"]) or None, "include_source": data["include_source"]}
