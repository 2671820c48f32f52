"""Post-edit judgments: the body of a judgment on an item of a post-editing campaign (Campaign.Task.POST_EDIT).

Such an item is one machine translation (translation/services/post_edit.py made it): one response per field, its
text the machine's. The annotator sends a verdict, "accepted" (as it is), "edited" (with the new text of each
response they changed) or "unusable". judgments.judgment_submit calls post_edit_content instead of the ranking
check and stores the result with the same idempotency, revision, lease and counter code as a ranking; the item's
Translation is updated in the same transaction (latest submission wins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from annotation.models import Item, Response, Verdict
from crossfeed.parsers import surrogate_code

MAX_EDIT_CHARS = 20_000
VERDICTS = [Verdict.ACCEPTED.value, Verdict.EDITED.value, Verdict.UNUSABLE.value]


def normalise_text(text: str) -> str:
    """A browser sends a textarea's line breaks as CRLF: the same text as the machine's LF, not an edit."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _same(edited: str, machine: str) -> bool:
    return edited.strip() == normalise_text(machine).strip()


def check_post_edit(responses: list[tuple[int, str]], verdict: Any, edits: Any) -> tuple[str, dict[str, str],
                                                                                       dict[str, list[str]]]:
    """Validate a post-edit against the item's (response id, machine text); returns (verdict, edits, errors by field).

    `edits` ({"<response id>": text}) is required, and non-empty, with "edited" only. Texts are non-empty and at most
    MAX_EDIT_CHARS long; an edit equal to the machine text (line breaks and outer spaces aside) is dropped, and an
    "edited" left with no edit is stored as "accepted". Bounded by the item: more keys than responses get one
    message before any key is looked at (as check_ranking does).
    """
    from annotation.services.judgments import _not_a_response, _too_many_keys

    errors: dict[str, list[str]] = {}
    machine = {str(response_id): text for response_id, text in responses}
    if verdict not in VERDICTS:
        errors["verdict"] = [_("required: one of %(choices)s") % {"choices": ", ".join(VERDICTS)}]
    clean: dict[str, str] = {}
    if edits in (None, {}):
        if verdict == Verdict.EDITED:
            errors["edits"] = [_('required with the verdict "edited": {"<response id>": "the corrected text", ...}')]
    elif not isinstance(edits, dict):
        errors["edits"] = [_('expected an object {"<response id>": "the corrected text"}')]
    elif verdict in (Verdict.ACCEPTED, Verdict.UNUSABLE):
        errors["edits"] = [_('send edits only with the verdict "edited" (%(verdict)s keeps the machine translation '
                             'as it is)') % {"verdict": verdict}]
    elif len(edits) > len(machine):
        errors["edits"] = [_too_many_keys(len(edits), len(machine))]
    else:
        for key, text in edits.items():
            if str(key) not in machine:
                errors.setdefault("edits", []).append(_not_a_response(key))
            elif not isinstance(text, str) or not text.strip():
                errors.setdefault("edits", []).append(
                    _("response %(response)s: the corrected text is empty; to reject the translation send the "
                      "verdict \"unusable\"") % {"response": key})
            elif len(text) > MAX_EDIT_CHARS:
                errors.setdefault("edits", []).append(
                    _("response %(response)s: %(length)d characters; at most %(limit)d")
                    % {"response": key, "length": len(text), "limit": MAX_EDIT_CHARS})
            elif "\x00" in text or surrogate_code(text) is not None:
                errors.setdefault("edits", []).append(
                    _("response %(response)s: contains a NUL character or a lone surrogate") % {"response": key})
            elif not _same(normalise_text(text), machine[str(key)]):
                clean[str(key)] = normalise_text(text)
    if errors:
        return "", {}, errors
    if verdict == Verdict.EDITED and not clean:
        verdict = Verdict.ACCEPTED.value
    return verdict, clean, {}


def post_edit_content(*, item: Item, ranks: Any, flags: Any, verdict: Any,
                      edits: Any) -> tuple[dict, dict[str, list[str]], Callable[[int, Any], None] | None]:
    """(the judgment's content, errors by field, what to do with the item's Translation once stored).

    The Translation's new fields and edit distance are worked out here, before the write transaction (a long
    edit's distance takes milliseconds that no writer should wait for); the returned callable writes them."""
    errors: dict[str, list[str]] = {}
    if ranks is not None or flags not in (None, {}):
        errors["ranks"] = [_("campaign %(name)r is a post-editing campaign: send a verdict (accepted, edited or "
                             "unusable) and edits, not ranks or flags") % {"name": item.campaign.name}]
    responses = list(Response.objects.filter(item_id=item.pk).order_by("position").values_list("id", "text"))
    clean_verdict, clean_edits, problems = check_post_edit(responses, verdict, edits)
    errors.update(problems)
    if errors:
        return {}, errors, None
    # translation depends on annotation, not the other way: the app that made the item says what a verdict does
    # to it, through a function named in settings (CROSSFEED_POST_EDIT_RECORDER; translation's by default).
    prepare = import_string(settings.CROSSFEED_POST_EDIT_RECORDER)
    record = prepare(item_id=item.pk, verdict=clean_verdict, edits=clean_edits)
    return {"ranks": {}, "flags": {}, "verdict": clean_verdict, "edits": clean_edits}, {}, record


def ranking_on_post_edit_refused(verdict: Any, edits: Any) -> dict[str, list[str]]:
    """A post-edit body sent to a ranking campaign: one clear message instead of "no rank for response …"."""
    if verdict is None and edits is None:
        return {}
    return {"verdict": [_("this campaign ranks responses: send ranks (and flags), not a verdict or edits; verdicts "
                          "and edits are for post-editing campaigns")]}
