"""The admin's "Import an instruction set" form: types and choices only; instruction_set_import checks the rest."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.languages import all_languages
from instructions.services.sets import MAX_NAME_CHARS


def _language_choices() -> list[tuple[str, str]]:
    return [(language.code, f"{language.name} ({language.code})") for language in all_languages()]


class InstructionSetImportForm(forms.Form):
    file = forms.FileField(label=_("file"), help_text=_(
        "Alpaca JSON (an array) or JSONL with instruction, input, output; or TRL messages JSONL."))
    name = forms.CharField(label=_("name"), max_length=MAX_NAME_CHARS, required=False,
                           help_text=_("Leave empty to name the set after its file."))
    language = forms.ChoiceField(label=_("language"), choices=_language_choices, initial="en",
                                 help_text=_("The language the set is written in."))
    notes = forms.CharField(label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
