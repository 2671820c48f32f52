"""annotation.forms.RankField takes exactly what the TypedChoiceField it replaced took, with the same errors."""

from __future__ import annotations

import pytest
from django import forms
from django.http import QueryDict

from annotation.forms import JudgmentForm, RankField

ODD = ["", " ", "0", "1", "2", "4", "5", "01", " 2", "2 ", "+1", "-1", "1.0", "²", "٣", "1e0", "9" * 5000, "x",
       "१", "3\n"]


def typed_choice(count: int) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(choices=[(str(n), str(n)) for n in range(1, count + 1)], coerce=int,
                                  error_messages={"required": "Give this response a rank.",
                                                  "invalid_choice": "Choose a rank from the list."})


def outcome(field: forms.Field, value: str):
    try:
        return "ok", field.clean(value)
    except forms.ValidationError as error:
        return "error", error.messages


@pytest.mark.parametrize("count", [1, 2, 4, 12])
@pytest.mark.parametrize("value", ODD + [str(n) for n in range(13)])
def test_it_takes_and_refuses_what_the_choice_field_did(count, value):
    assert outcome(RankField(count=count), value) == outcome(typed_choice(count), value)


def test_the_form_names_each_wrong_rank():
    data = QueryDict(mutable=True)
    data.update({"rank_7": "1", "rank_8": "9", "idempotency_key": "k-1"})
    form = JudgmentForm(data, response_ids=[7, 8, 9])
    assert not form.is_valid()
    assert form.field_errors(per_response=True) == {"rank_8": ["Choose a rank from the list."],
                                                    "rank_9": ["Give this response a rank."]}
