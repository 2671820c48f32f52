from __future__ import annotations

import time

from django import forms
from django.utils.translation import gettext_lazy as _


class JudgmentForm(forms.Form):
    """The annotation page's POST: rank_<response id>, flag_<response id> (repeated), comment, and the hidden
    idempotency key and render time. Types only; the service checks ids, ranks and flags against the item."""

    comment = forms.CharField(required=False, max_length=5000)
    idempotency_key = forms.RegexField(regex=r"^[A-Za-z0-9_.:-]{1,128}\Z")
    rendered_at = forms.IntegerField(required=False, min_value=0)
    seconds_spent = forms.IntegerField(required=False, min_value=0, max_value=86400)

    def __init__(self, data, *, response_ids: list[int]):
        super().__init__(data)
        self.response_ids = response_ids
        for response_id in response_ids:
            self.fields[f"rank_{response_id}"] = forms.TypedChoiceField(
                choices=[(str(n), str(n)) for n in range(1, len(response_ids) + 1)],
                coerce=int,
                error_messages={"required": _("Give this response a rank."),
                                "invalid_choice": _("Choose a rank from the list.")},
            )

    def posted(self) -> dict:
        """What the annotator sent, to show it back after an error."""
        ranks = {}
        for response_id in self.response_ids:
            value = self.data.get(f"rank_{response_id}", "")
            if value.isdigit():
                ranks[str(response_id)] = int(value)
        return {"ranks": ranks, "flags": self._flags(), "comment": self.data.get("comment", "")}

    def _flags(self) -> dict[str, list[str]]:
        return {
            str(response_id): self.data.getlist(f"flag_{response_id}")
            for response_id in self.response_ids
            if self.data.getlist(f"flag_{response_id}")
        }

    def field_errors(self) -> dict[str, list[str]]:
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
