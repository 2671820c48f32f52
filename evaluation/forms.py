"""Forms of the evaluation pages; every query string is validated by one of these before it reaches a selector."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.languages import TIERS, all_languages, normalize_language_code
from evaluation.benchmarks import all_benchmarks
from evaluation.models import EvaluationRun
from evaluation.services.sources import source_names
from training.models import BaseModel, ModelVersion

# ISO 15924 names (Unicode's English names) of the scripts our languages use: the comparison page's filter showed
# the bare codes. A script missing here shows its code alone.
SCRIPT_NAMES = {
    "Arab": _("Arabic"), "Armn": _("Armenian"), "Beng": _("Bengali"), "Cyrl": _("Cyrillic"),
    "Deva": _("Devanagari"), "Ethi": _("Ethiopic"), "Geor": _("Georgian"), "Grek": _("Greek"),
    "Gujr": _("Gujarati"), "Guru": _("Gurmukhi"), "Hans": _("Han (Simplified)"), "Hant": _("Han (Traditional)"),
    "Hebr": _("Hebrew"), "Jpan": _("Japanese"), "Khmr": _("Khmer"), "Knda": _("Kannada"), "Kore": _("Korean"),
    "Laoo": _("Lao"), "Latn": _("Latin"), "Mlym": _("Malayalam"), "Mymr": _("Myanmar"), "Orya": _("Odia"),
    "Sinh": _("Sinhala"), "Taml": _("Tamil"), "Telu": _("Telugu"), "Thai": _("Thai"), "Tibt": _("Tibetan"),
}


def script_label(code: str) -> str:
    """'Latn' → 'Latin (Latn)', in the interface language; the code stays, as the datasets use it."""
    return f"{SCRIPT_NAMES[code]} ({code})" if code in SCRIPT_NAMES else code


def _script_choices() -> list[tuple[str, str]]:
    return sorted(((script, script_label(script)) for script in {spec.script for spec in all_languages()}),
                  key=lambda choice: choice[1])


class CompareForm(forms.Form):
    """Two runs (a is the reference, b the candidate), or a version compared with what it was trained from."""

    a = forms.ModelChoiceField(queryset=EvaluationRun.objects.all(), required=False, label=_("reference run (a)"))
    b = forms.ModelChoiceField(queryset=EvaluationRun.objects.all(), required=False, label=_("candidate run (b)"))
    version = forms.ModelChoiceField(queryset=ModelVersion.objects.all(), required=False,
                                     label=_("or: a version against its parent"))
    tier = forms.MultipleChoiceField(choices=[(tier, tier) for tier in TIERS], required=False,
                                     widget=forms.CheckboxSelectMultiple, label=_("resource tier"))
    script = forms.MultipleChoiceField(choices=_script_choices, required=False, label=_("script"))
    metrics = forms.ChoiceField(choices=[("primary", _("main metric of each benchmark")), ("all", _("all metrics"))],
                                required=False, initial="primary", label=_("metrics"))

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("version") and not (data.get("a") and data.get("b")):
            raise forms.ValidationError(_("Choose two runs, or a model version to compare with its parent."))
        return data


class OutputsForm(forms.Form):
    benchmark = forms.ChoiceField(choices=())
    language = forms.CharField(max_length=32)
    off_target = forms.BooleanField(required=False, label=_("only off-target outputs"))
    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)

    def __init__(self, *args, run: EvaluationRun, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["benchmark"].choices = [(name, name) for name in run.benchmarks]

    def clean_language(self) -> str:
        code = normalize_language_code(self.cleaned_data["language"])
        if code is None:
            raise forms.ValidationError(_("Unknown language code."))
        return code

    def clean_page(self) -> int:
        return self.cleaned_data.get("page") or 1


def _subject_choices() -> list[tuple[str, str]]:
    versions = [(f"version:{v.pk}", str(v)) for v in ModelVersion.objects.all()]
    bases = [(f"base:{b.pk}", _("%s (bare base model)") % b) for b in BaseModel.objects.all()]
    return [(_("Model versions"), versions), (_("Base models"), bases)]


class EvaluationRunForm(forms.Form):
    subject = forms.ChoiceField(choices=_subject_choices, label=_("model"))
    benchmarks = forms.MultipleChoiceField(
        choices=lambda: [(b.name, f"{b.name} — {b.title}") for b in all_benchmarks()],
        widget=forms.CheckboxSelectMultiple,
    )
    languages = forms.CharField(required=False, help_text=_("comma-separated codes; empty: every language"))
    limit = forms.IntegerField(min_value=1, required=False, help_text=_(
        "examples per language; empty: the protocol's (FLORES: the seed's 200 sentences per direction; XL-Sum: the "
        "first 250 articles; others: all)"))
    max_new_tokens = forms.IntegerField(min_value=1, max_value=8192, initial=512)
    batch_size = forms.IntegerField(min_value=1, max_value=512, initial=8)
    samples = forms.BooleanField(required=False, label=_("use the shipped sample sets"),
                                 help_text=_("ignore the data folders set under Benchmark sources"))

    def run_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        kind, _, pk = data.pop("subject").partition(":")
        model = ModelVersion if kind == "version" else BaseModel
        data["model_version" if kind == "version" else "base_model"] = model.objects.get(pk=int(pk))
        data["languages"] = [code.strip() for code in data["languages"].split(",") if code.strip()]
        return data


class BenchmarkSourceForm(forms.Form):
    name = forms.ChoiceField(choices=lambda: [(name, name) for name in source_names()],
                             help_text=_("a benchmark, or a dataset shared by several (flores200)"))
    path = forms.CharField(max_length=500, help_text=_("absolute path of the folder on the workers"))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class WinRateCampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    overlap = forms.IntegerField(min_value=1, max_value=20, initial=3, help_text=_("judgments wanted per item"))
