from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from annotation.models import DEFAULT_FLAGS, Campaign, Item
from crossfeed.errors import InvalidInput

FLAG_RE_MAX = 40


def _check(name: Any, overlap: Any, lease_minutes: Any, flag_vocabulary: Any, status: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = ["required, at most 200 characters"]
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= 20:
        errors["overlap"] = ["a whole number from 1 to 20"]
    if isinstance(lease_minutes, bool) or not isinstance(lease_minutes, int) or not 1 <= lease_minutes <= 1440:
        errors["lease_minutes"] = ["a whole number of minutes from 1 to 1440"]
    if (
        not isinstance(flag_vocabulary, list)
        or not all(isinstance(flag, str) and 0 < len(flag) <= FLAG_RE_MAX for flag in flag_vocabulary)
        or len(set(flag_vocabulary)) != len(flag_vocabulary)
    ):
        errors["flag_vocabulary"] = [f"a list of distinct names of 1–{FLAG_RE_MAX} characters"]
    if status not in Campaign.Status.values:
        errors["status"] = [f"one of {', '.join(Campaign.Status.values)}"]
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
) -> Campaign:
    flags = list(DEFAULT_FLAGS) if flag_vocabulary is None else flag_vocabulary
    errors = _check(name, overlap, lease_minutes, flags, status)
    if isinstance(name, str) and Campaign.objects.filter(name__iexact=name.strip()).exists():
        errors.setdefault("name", []).append(f"a campaign named {name.strip()!r} already exists")
    if not isinstance(guidelines, str):
        errors["guidelines"] = ["expected Markdown text"]
    if errors:
        raise InvalidInput("invalid campaign", field_errors=errors)
    return Campaign.objects.create(
        name=name.strip(),
        overlap=overlap,
        lease_minutes=lease_minutes,
        guidelines=guidelines,
        status=status,
        flag_vocabulary=flags,
        created_by=created_by if created_by and created_by.is_authenticated else None,
    )


@transaction.atomic
def campaign_update(*, campaign: Campaign, **changes: Any) -> Campaign:
    """Change settings; a new overlap k applies to every item (never below the judgments an item already has)."""
    values = {key: changes.get(key, getattr(campaign, key)) for key in
              ("name", "overlap", "lease_minutes", "flag_vocabulary", "status", "guidelines")}
    errors = _check(values["name"], values["overlap"], values["lease_minutes"], values["flag_vocabulary"],
                    values["status"])
    if errors:
        raise InvalidInput("invalid campaign", field_errors=errors)
    overlap_changed = values["overlap"] != campaign.overlap
    for key, value in values.items():
        setattr(campaign, key, value)
    campaign.save()
    if overlap_changed:
        # Greatest(): lowering k must not make an item that already has more judgments violate its CHECK.
        Item.objects.filter(campaign=campaign).update(
            target=Greatest(campaign.overlap, F("judgment_count") + F("lease_count"))
        )
    return campaign
