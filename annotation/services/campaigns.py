from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils.translation import gettext as _

from annotation.models import DEFAULT_FLAGS, Campaign, Item
from annotation.services.quality import QUALITY_DEFAULTS, QUALITY_SETTINGS, quality_settings_check
from crossfeed.errors import InvalidInput
from crossfeed.parsers import surrogate_code

FLAG_RE_MAX = 40
MAX_FLAGS = 30
MAX_NAME_CHARS = 200
MAX_GUIDELINES_CHARS = 100_000
MAX_OVERLAP = 20
MAX_LEASE_MINUTES = 1440


def _whole_number(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _plain_text(value: Any) -> bool:
    # A lone surrogate can come in only through a JSON field (the admin's flag list); the database refuses it.
    return isinstance(value, str) and surrogate_code(value) is None


def campaign_check(
    *,
    name: Any,
    overlap: Any,
    lease_minutes: Any,
    flag_vocabulary: Any,
    status: Any,
    guidelines: Any,
    campaign: Campaign | None = None,
    **quality: Any,
) -> dict[str, list[str]]:
    """Every rule about a campaign's settings, as errors by field ({} when valid).

    The one check behind the API (campaign_create), the admin's add and change forms and campaign_update, so that
    nothing a page cannot show (flags that are not names, an overlap the database refuses) is ever stored.
    `campaign`: the campaign being changed, whose own name is not a clash. `quality`: the gold and qualification
    settings (services/quality.py: QUALITY_SETTINGS; the stored or default value for any not given).
    """
    errors: dict[str, list[str]] = {}
    if not _plain_text(name) or not name.strip() or len(name) > MAX_NAME_CHARS:
        errors["name"] = [_("required, at most %(limit)d characters") % {"limit": MAX_NAME_CHARS}]
    else:
        clashes = Campaign.objects.filter(name__iexact=name.strip())
        if campaign is not None:
            clashes = clashes.exclude(pk=campaign.pk)
        if clashes.exists():
            errors["name"] = [_("a campaign named %(name)r already exists") % {"name": name.strip()}]
    if not _whole_number(overlap, 1, MAX_OVERLAP):
        errors["overlap"] = [_("a whole number from 1 to %(limit)d") % {"limit": MAX_OVERLAP}]
    if not _whole_number(lease_minutes, 1, MAX_LEASE_MINUTES):
        errors["lease_minutes"] = [_("a whole number of minutes from 1 to %(limit)d") % {"limit": MAX_LEASE_MINUTES}]
    if (
        not isinstance(flag_vocabulary, list)
        or len(flag_vocabulary) > MAX_FLAGS
        or not all(_plain_text(flag) and 0 < len(flag) <= FLAG_RE_MAX for flag in flag_vocabulary)
        or len(set(flag_vocabulary)) != len(flag_vocabulary)
    ):
        errors["flag_vocabulary"] = [_("a list of at most %(count)d distinct names of 1–%(length)d characters")
                                     % {"count": MAX_FLAGS, "length": FLAG_RE_MAX}]
    if status not in Campaign.Status.values:
        errors["status"] = [_("one of %(choices)s") % {"choices": ", ".join(Campaign.Status.values)}]
    if not _plain_text(guidelines) or len(guidelines) > MAX_GUIDELINES_CHARS:
        errors["guidelines"] = [_("Markdown text of at most %(limit)d characters") % {"limit": MAX_GUIDELINES_CHARS}]
    errors.update(quality_settings_check(**{
        name: quality.get(name, getattr(campaign, name) if campaign is not None else QUALITY_DEFAULTS[name])
        for name in QUALITY_SETTINGS
    }))
    return errors


@transaction.atomic
def campaign_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None,
    overlap: int = 3,
    lease_minutes: int = 10,
    guidelines: str = "",
    status: str = Campaign.Status.ACTIVE,
    flag_vocabulary: list[str] | None = None,
    task: str = Campaign.Task.RANKING,
    **quality: Any,
) -> Campaign:
    """`quality`: gold and qualification settings (services/quality.py: QUALITY_SETTINGS), defaults for those left
    out. `task`: what annotators do (Campaign.Task); post-editing campaigns are made by
    translation.services.post_edit.post_edit_campaign_create, with their items."""
    flags = list(DEFAULT_FLAGS) if flag_vocabulary is None else flag_vocabulary
    unknown = sorted(set(quality) - set(QUALITY_SETTINGS))
    if unknown:
        raise TypeError(f"campaign_create() got unexpected keyword argument(s) {', '.join(unknown)}")
    quality = {**QUALITY_DEFAULTS, **quality}
    errors = campaign_check(name=name, overlap=overlap, lease_minutes=lease_minutes, flag_vocabulary=flags,
                            status=status, guidelines=guidelines, **quality)
    if task not in Campaign.Task.values:
        errors["task"] = [_("one of %(choices)s") % {"choices": ", ".join(Campaign.Task.values)}]
    if errors:
        raise InvalidInput(_("invalid campaign"), field_errors=errors)
    return Campaign.objects.create(
        task=task,
        name=name.strip(),
        overlap=overlap,
        lease_minutes=lease_minutes,
        guidelines=guidelines,
        status=status,
        flag_vocabulary=flags,
        created_by=created_by if created_by and created_by.is_authenticated else None,
        **quality,
    )


@transaction.atomic
def campaign_update(*, campaign: Campaign, **changes: Any) -> Campaign:
    """Change settings; a new overlap k applies to every item (never below the judgments an item already has)."""
    values = {key: changes.get(key, getattr(campaign, key)) for key in
              ("name", "overlap", "lease_minutes", "flag_vocabulary", "status", "guidelines", *QUALITY_SETTINGS)}
    errors = campaign_check(**values, campaign=campaign)
    if errors:
        raise InvalidInput(_("invalid campaign"), field_errors=errors)
    overlap_changed = values["overlap"] != campaign.overlap
    values["name"] = values["name"].strip()
    for key, value in values.items():
        setattr(campaign, key, value)
    campaign.save()
    if overlap_changed:
        # Greatest(): lowering k must not make an item that already has more judgments violate its CHECK. Gold and
        # qualification items are not judged k times: they keep their own target.
        Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK).update(
            target=Greatest(campaign.overlap, F("judgment_count") + F("lease_count"))
        )
    return campaign
