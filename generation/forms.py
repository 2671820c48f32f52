"""Forms of the generation pages. They check types and choices and turn the page's fields into the arguments of
generation_job_create / next_round_create, which check the rest (unknown languages, a campaign name in use, a prompt
set of zero items ...); the services' errors are put back on these fields (add_service_error)."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.languages import all_languages, feedback_languages
from annotation.models import Campaign
from crossfeed.errors import CrossfeedError
from crossfeed.parsers import lone_surrogates
from generation.models import Endpoint, GenerationJob
from training.models import BaseModel, ModelVersion

# An uploaded prompt set is read into memory to be checked line by line: 20 MiB is ~100,000 prompts of 200 bytes.
MAX_PROMPT_FILE_BYTES = 20 * 1024 * 1024
# Where a service error about one of its arguments belongs on these forms (the first part of its field name).
SERVICE_FIELDS = {
    "generators": "base_models", "prompts": "prompt_campaign", "items": "prompt_file",
    "response_languages": "response_languages", "languages_per_prompt": "languages_per_prompt",
    "samples_per_generator": "samples_per_generator", "params": "temperature", "off_target": "off_target",
    "campaign": "campaign_name", "campaign_name": "campaign_name", "overlap": "campaign_overlap",
    "against_parent": "against_parent", "training_run": None,
}
PARAM_FIELDS = ("temperature", "top_p", "max_new_tokens", "seed")


def _language_choices() -> list[tuple[str, str]]:
    return [(spec.code, f"{spec.name} ({spec.code})") for spec in all_languages()]


def parse_prompt_file(upload) -> list[dict]:
    """The uploaded JSONL's objects; a line that is not a JSON object is refused with its number. Their fields are
    the service's to check (it names the line as items[N])."""
    if upload.size > MAX_PROMPT_FILE_BYTES:
        raise forms.ValidationError(_("The file is larger than %(mib)d MiB; split it.")
                                    % {"mib": MAX_PROMPT_FILE_BYTES // (1024 * 1024)})
    items = []
    for number, raw in enumerate(upload.read().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise forms.ValidationError(_("Line %(line)d is not UTF-8 JSON.") % {"line": number}) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Line %(line)d is not a JSON object such as {"external_id": "p1", '
                                          '"text": "…", "language": "sw"}.') % {"line": number})
        if lone_surrogates(value, limit=1):
            raise forms.ValidationError(_("Line %(line)d holds a lone surrogate character.") % {"line": number})
        items.append(value)
    if not items:
        raise forms.ValidationError(_("The file holds no prompts."))
    return items


class ServiceErrorsMixin(forms.Form):
    """Puts a service's InvalidInput on the field it is about."""

    def service_field(self, name: str, message: str) -> str | None:
        """The form field a service error belongs on: by its field, and for "params" and "campaign" by the
        message's first word ("temperature: …", "name: …")."""
        head = name.split(".")[0].split("[")[0]
        first = message.split(":")[0]
        if head == "params" and first in PARAM_FIELDS:
            return first
        if head == "campaign" and "campaign" in self.fields and self.data.get("target") == "existing":
            return "campaign"
        field = SERVICE_FIELDS.get(head, head)
        return field if field in self.fields else None

    def add_service_error(self, exc: CrossfeedError) -> None:
        problems = exc.field_errors or {exc.field or "": [exc.message]}
        for name, messages in problems.items():
            for message in messages:
                field = self.service_field(name, message)
                self.add_error(field, message if field or not name else f"{name}: {message}")


class SamplingFields(forms.Form):
    """Languages, samples and decoding settings, shared by the job form and the next-round form."""

    languages_per_prompt = forms.IntegerField(
        required=False, min_value=1, max_value=200, label=_("Response languages per prompt"),
        help_text=_("Sampled from the chosen ones, per prompt; empty: all of them."))
    samples_per_generator = forms.IntegerField(min_value=1, max_value=16, initial=1,
                                               label=_("Samples per generator"))
    temperature = forms.FloatField(required=False, min_value=0, max_value=2, label=_("Temperature"),
                                   help_text=_("0: greedy decoding. Empty: the default (0.8)."))
    top_p = forms.FloatField(required=False, min_value=0, max_value=1, label=_("Top-p"))
    max_new_tokens = forms.IntegerField(required=False, min_value=1, max_value=4096, label=_("Max new tokens"))
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, label=_("Seed"))
    off_target = forms.ChoiceField(choices=GenerationJob.OffTarget.choices, initial=GenerationJob.OffTarget.KEEP,
                                   label=_("Candidates detected in another language"))

    def sampling_arguments(self) -> dict:
        data = self.cleaned_data
        params = {name: data[name] for name in PARAM_FIELDS if data.get(name) is not None}
        return {"languages_per_prompt": data.get("languages_per_prompt"),
                "samples_per_generator": data["samples_per_generator"], "params": params or None,
                "off_target": data["off_target"]}


class GenerationJobForm(ServiceErrorsMixin, SamplingFields):
    base_models = forms.ModelMultipleChoiceField(BaseModel.objects.all(), required=False, label=_("Base models"),
                                                 widget=forms.CheckboxSelectMultiple)
    model_versions = forms.ModelMultipleChoiceField(ModelVersion.objects.select_related("base_model"),
                                                    required=False, label=_("Model versions"),
                                                    widget=forms.CheckboxSelectMultiple)
    endpoints = forms.ModelMultipleChoiceField(Endpoint.objects.all(), required=False, label=_("Endpoints"),
                                               widget=forms.CheckboxSelectMultiple)
    prompt_campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, label=_("Prompts of a campaign"),
                                             help_text=_("One prompt per distinct prompt of its items."))
    prompt_file = forms.FileField(
        required=False, label=_("… or a file of prompts"),
        help_text=_('JSONL, one {"external_id": "p1", "text": "…", "language": "sw", "pivot": {"text": "…", '
                    '"language": "en"}} per line (pivot optional).'))
    response_languages = forms.MultipleChoiceField(
        choices=_language_choices, required=False, label=_("Response languages"),
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text=_("Empty or the 30 feedback languages: every feedback language other than the prompt's."))
    target = forms.ChoiceField(choices=[("new", _("a new campaign")), ("existing", _("an existing campaign"))],
                               initial="new", widget=forms.RadioSelect, label=_("Items go to"))
    campaign_name = forms.CharField(required=False, max_length=200, label=_("New campaign's name"))
    campaign_overlap = forms.IntegerField(required=False, min_value=1, max_value=20, initial=3,
                                          label=_("Judgments wanted per item"))
    campaign = forms.ModelChoiceField(Campaign.objects.all(), required=False, label=_("Existing campaign"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("response_languages", [spec.code for spec in feedback_languages()])

    def service_field(self, name: str, message: str) -> str | None:
        if name == "prompts" and self.cleaned_data.get("prompt_file"):
            return "prompt_file"
        return super().service_field(name, message)

    def clean_prompt_file(self) -> list[dict] | None:
        upload = self.cleaned_data.get("prompt_file")
        return parse_prompt_file(upload) if upload else None

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("base_models") or data.get("model_versions") or data.get("endpoints")) \
                and not self.has_error("base_models"):
            self.add_error("base_models", _("Choose at least one generator: a base model, a version or an endpoint."))
        if data.get("prompt_campaign") and data.get("prompt_file"):
            self.add_error("prompt_file", _("Choose a campaign or upload a file, not both."))
        elif not data.get("prompt_campaign") and not data.get("prompt_file") and not self.has_error("prompt_file"):
            self.add_error("prompt_campaign", _("Choose the campaign whose prompts to answer, or upload a file."))
        if data.get("target") == "existing" and not data.get("campaign"):
            self.add_error("campaign", _("Choose the campaign the items go to."))
        if data.get("target") == "new" and not (data.get("campaign_name") or "").strip():
            self.add_error("campaign_name", _("Name the new campaign."))
        return data

    def service_arguments(self) -> dict:
        """Keyword arguments for generation_job_create."""
        data = self.cleaned_data
        generators = ([{"base_model": model.pk} for model in data["base_models"]]
                      + [{"model_version": version.pk} for version in data["model_versions"]]
                      + [{"endpoint": endpoint.pk} for endpoint in data["endpoints"]])
        prompts = ({"campaign": data["prompt_campaign"].pk} if data.get("prompt_campaign")
                   else {"items": data["prompt_file"]})
        if data["target"] == "existing":
            campaign = {"id": data["campaign"].pk}
        else:
            campaign = {"name": data["campaign_name"].strip(), "overlap": data.get("campaign_overlap") or 3}
        return {"generators": generators, "prompts": prompts, "campaign": campaign,
                "response_languages": _chosen_languages(data.get("response_languages")), **self.sampling_arguments()}


def _chosen_languages(codes: list[str] | None) -> list[str] | None:
    """None (the default: the feedback languages other than each prompt's) when nothing or exactly the feedback
    languages are chosen; a prompt is never answered in its own language by default."""
    if not codes or set(codes) == {spec.code for spec in feedback_languages()}:
        return None
    return list(codes)


class NextRoundForm(ServiceErrorsMixin, SamplingFields):
    """The training run page's "Next round": the new version (beside what it was trained from) answers the prompts
    of the campaign the run was trained on, or of another one, into a new campaign."""

    against_parent = forms.BooleanField(
        required=False, initial=True, label=_("Also generate with what it was trained from"),
        help_text=_("Its parent version, or the bare base model: annotators then rank the new model against the old."))
    prompt_campaign = forms.ModelChoiceField(
        Campaign.objects.all(), required=False, label=_("Prompts of"),
        help_text=_("Empty: the campaign the run was trained on."))
    campaign_name = forms.CharField(required=False, max_length=200, label=_("New campaign's name"),
                                    help_text=_("Empty: the first campaign's name and the round number."))
    campaign_overlap = forms.IntegerField(required=False, min_value=1, max_value=20,
                                          label=_("Judgments wanted per item"),
                                          help_text=_("Empty: as in the campaign the run was trained on."))

    def service_arguments(self) -> dict:
        """Keyword arguments for next_round_create (but the run)."""
        data = self.cleaned_data
        prompts = {"campaign": data["prompt_campaign"].pk} if data.get("prompt_campaign") else None
        return {"prompts": prompts, "against_parent": data["against_parent"],
                "campaign_name": (data.get("campaign_name") or "").strip(), "overlap": data.get("campaign_overlap"),
                **self.sampling_arguments()}
