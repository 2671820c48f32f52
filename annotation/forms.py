from __future__ import annotations

import time

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.models import Campaign
from annotation.services.campaigns import campaign_check
from annotation.services.quality import QUALITY_SETTINGS
from crossfeed.parsers import JSONFormField


class RankField(forms.Field):
    """A rank from 1 to `count`: TypedChoiceField(choices=1..count, coerce=int) without its choices, which each
    field built and normalised afresh, one field per response on every submit of the annotation page (the form of a
    4-response item: 0.50-0.64 ms with them, 0.26-0.29 ms now). The same values pass (the digits exactly as listed:
    no "01", " 2" or "٣") and the same errors."""

    default_error_messages = {"required": _("Give this response a rank."),
                              "invalid_choice": _("Choose a rank from the list.")}

    def __init__(self, *, count: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.count = count

    def to_python(self, value) -> int | None:
        if value in self.empty_values:
            return None
        text = str(value)
        # ASCII digits only, no leading zero and few (int() refuses 5,000 digits), as the listed choices' strings are.
        if not (text.isascii() and text.isdigit() and text[0] != "0" and len(text) <= len(str(self.count))
                and int(text) <= self.count):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return int(text)


class JudgmentForm(forms.Form):
    """The annotation page's POST: rank_<response id>, flag_<response id> (repeated), comment, and the hidden
    idempotency key and render time. Types only; the service checks ids, ranks and flags against the item."""

    comment = forms.CharField(required=False, max_length=5000)
    idempotency_key = forms.RegexField(regex=r"^[A-Za-z0-9_.:-]{1,128}\Z")
    # A Unix time; 2**40 s is far past any real one, and keeps a forged value from reaching the arithmetic below.
    rendered_at = forms.IntegerField(required=False, min_value=0, max_value=2**40)
    seconds_spent = forms.IntegerField(required=False, min_value=0, max_value=86400)

    def __init__(self, data, *, response_ids: list[int]):
        super().__init__(data)
        self.response_ids = response_ids
        for response_id in response_ids:
            self.fields[f"rank_{response_id}"] = RankField(count=len(response_ids))

    def posted(self) -> dict:
        """What the annotator sent, to show it back after an error."""
        ranks = {}
        for response_id in self.response_ids:
            value = self.data.get(f"rank_{response_id}", "")
            # ASCII digits only, and few: str.isdigit() is true for "²" (which int() refuses) and for 5,000 digits
            # (which int() refuses past 4,300); either would end in a 500 here, before the form's own error.
            if value.isascii() and value.isdigit() and len(value) <= 3:
                ranks[str(response_id)] = int(value)
        return {"ranks": ranks, "flags": self._flags(), "comment": self.data.get("comment", "")}

    def _flags(self) -> dict[str, list[str]]:
        return {
            str(response_id): self.data.getlist(f"flag_{response_id}")
            for response_id in self.response_ids
            if self.data.getlist(f"flag_{response_id}")
        }

    def field_errors(self, *, per_response: bool = False) -> dict[str, list[str]]:
        """The form's errors by field. per_response: each rank error under its own field (rank_<response id>), for
        the annotation page to show in that response's card under the letter on screen; otherwise all under "ranks",
        each after its response id (the adjudication page letters those)."""
        if per_response:
            return {name: [str(message) for message in messages] for name, messages in self.errors.items()}
        errors: dict[str, list[str]] = {}
        for name, messages in self.errors.items():
            key = "ranks" if name.startswith("rank_") else name
            errors.setdefault(key, []).extend(f"{name.removeprefix('rank_')}: {m}" if key == "ranks" else m
                                              for m in messages)
        return errors

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        seconds = data.get("seconds_spent")
        if seconds is None and data.get("rendered_at"):
            # Without JavaScript the page's render time still gives a fair estimate.
            seconds = max(0, min(86400, int(time.time()) - data["rendered_at"]))
        return {
            "ranks": {str(response_id): data[f"rank_{response_id}"] for response_id in self.response_ids},
            "flags": self._flags(),
            "comment": data.get("comment", ""),
            "seconds_spent": seconds,
            "idempotency_key": data["idempotency_key"],
        }


class PostEditForm(forms.Form):
    """The post-editing page's POST: the verdict (the button pressed), edit_<response id> (each field's textarea),
    comment, and the hidden idempotency key and render time. The service checks the edits against the item."""

    verdict = forms.ChoiceField(choices=[(verdict, verdict) for verdict in ("accepted", "edited", "unusable")],
                                error_messages={"required": _("Choose Accept as is, Save edits or Unusable."),
                                                "invalid_choice": _("Choose Accept as is, Save edits or Unusable.")})
    comment = forms.CharField(required=False, max_length=5000)
    idempotency_key = forms.RegexField(regex=r"^[A-Za-z0-9_.:-]{1,128}\Z")
    rendered_at = forms.IntegerField(required=False, min_value=0, max_value=2**40)
    seconds_spent = forms.IntegerField(required=False, min_value=0, max_value=86400)

    def __init__(self, data, *, response_ids: list[int]):
        super().__init__(data)
        self.response_ids = response_ids
        for response_id in response_ids:
            # strip=False: the service compares the text with the machine's and keeps its spacing.
            self.fields[f"edit_{response_id}"] = forms.CharField(
                required=False, strip=False, max_length=20_000,
                error_messages={"max_length": _("At most %(limit_value)d characters (this text has %(show_value)d).")})

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("verdict") == "edited":
            for response_id in self.response_ids:
                name = f"edit_{response_id}"
                if name in cleaned and not cleaned[name].strip():
                    self.add_error(name, _("This text is empty: write the corrected translation, or mark the "
                                           "translation Unusable."))
        return cleaned

    def posted(self) -> dict:
        """What the annotator sent, to show it back after an error (the textareas keep their edits)."""
        edits = {str(response_id): self.data[f"edit_{response_id}"] for response_id in self.response_ids
                 if isinstance(self.data.get(f"edit_{response_id}"), str)}
        return {"edits": edits, "comment": self.data.get("comment", "")}

    def field_errors(self) -> dict[str, list[str]]:
        return {name: [str(message) for message in messages] for name, messages in self.errors.items()}

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        seconds = data.get("seconds_spent")
        if seconds is None and data.get("rendered_at"):
            seconds = max(0, min(86400, int(time.time()) - data["rendered_at"]))
        verdict = data["verdict"]
        # The textareas are always sent; only "Save edits" means them (the service drops the unchanged ones).
        edits = {str(response_id): data.get(f"edit_{response_id}", "") for response_id in self.response_ids} \
            if verdict == "edited" else {}
        return {"verdict": verdict, "edits": edits, "comment": data.get("comment", ""), "seconds_spent": seconds,
                "idempotency_key": data["idempotency_key"]}


CAMPAIGN_SETTINGS = ["name", "guidelines", "overlap", "lease_minutes", "status", "flag_vocabulary",
                     # Gold and qualification (annotation/services/quality.py, docs/campaigns.md).
                     "gold_rate", "gold_warn_below", "gold_exclude_below", "gold_min_seen", "qualification_pass_mark"]


class CampaignAdminForm(forms.ModelForm):
    """The admin's add and change form of a campaign, with the service's rules (campaign_check): the same checks as
    the API, so that the admin cannot store what the annotators' pages then fail on (flags that are not names)."""

    flag_vocabulary = JSONFormField(help_text=_(
        'A JSON list of flag names, e.g. ["wrong_language", "unsafe"]; annotators tick them per response.'))

    class Meta:
        model = Campaign
        fields = CAMPAIGN_SETTINGS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in QUALITY_SETTINGS:
            self.fields[name].required = False  # left empty: the stored value, or the default for a new campaign

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in QUALITY_SETTINGS:
            if name in cleaned and cleaned[name] is None:
                cleaned[name] = getattr(self.instance, name)
        # A field whose own cleaning failed (not a number, not JSON) already has its error; the service checks the
        # others, with the stored value in its place.
        values = {name: cleaned[name] if name in cleaned else getattr(self.instance, name)
                  for name in CAMPAIGN_SETTINGS}
        problems = campaign_check(**values, campaign=self.instance if self.instance.pk else None)
        # Added here, before the model's own checks: Django then skips the constraints of these fields, so each
        # problem is said once, on its field, in the service's words.
        for field, messages in problems.items():
            if field in cleaned:
                self.add_error(field, messages)
        return cleaned


class DisagreementFilterForm(forms.Form):
    """The disagreement list's query string: a language pair ("sw>ta") and a sort key."""

    pair = forms.CharField(required=False, max_length=40)
    sort = forms.ChoiceField(required=False, choices=[("disagreement", _("most disagreement first")),
                                                      ("judgments", _("most judgments first")),
                                                      ("item", _("item id"))])
