"""Quality control of a campaign: its gold and qualification settings, the annotators' gold records and states,
qualification results, admin exclusions and reviewers' adjudications (docs/campaigns.md).

The rules about one judgment are pure (annotation/gold.py); this module reads the records they need and writes the
outcome. Submitting a gold or qualification item calls `gold_judged` inside the submit's transaction, so a state and
the judgment that caused it are stored together; items to rank never come here (the submit's hot path is unchanged).
"""

from __future__ import annotations

import math
from datetime import datetime, time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from annotation.gold import EXCLUDED, Thresholds, by_position, gold_correct, qualification_passed, standing_state
from annotation.models import (
    Adjudication,
    AnnotatorStanding,
    Campaign,
    Exclusion,
    Item,
    Judgment,
    QualificationResult,
    Response,
)
from crossfeed.errors import InvalidInput

QUALITY_DEFAULTS: dict[str, Any] = {
    "gold_rate": 0.0,
    "gold_warn_below": 0.7,
    "gold_exclude_below": 0.5,
    "gold_min_seen": 10,
    "qualification_pass_mark": 0.8,
}
QUALITY_SETTINGS = tuple(QUALITY_DEFAULTS)
# More than half of an annotator's items being checks would make the campaign mostly checks.
MAX_GOLD_RATE = 0.5
MAX_GOLD_MIN_SEEN = 1000
MAX_REASON_CHARS = 1000
MAX_NOTE_CHARS = 5000
REVIEWER_GROUP = "Reviewers"
REVIEWER_PERMISSIONS = ("add_adjudication", "change_adjudication", "view_adjudication")


# --- settings ----------------------------------------------------------------------------------------------------


def _share(value: Any, high: float = 1.0) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            and 0 <= value <= high)


def quality_settings_check(**values: Any) -> dict[str, list[str]]:
    """The rules about a campaign's gold and qualification settings, as errors by field ({} when valid)."""
    errors: dict[str, list[str]] = {}
    if not _share(values["gold_rate"], MAX_GOLD_RATE):
        errors["gold_rate"] = [_("a share from 0 (no gold items) to %(limit)s, e.g. 0.05 for one item in 20")
                               % {"limit": MAX_GOLD_RATE}]
    for name in ("gold_warn_below", "gold_exclude_below", "qualification_pass_mark"):
        if not _share(values[name]):
            errors[name] = [_("a share of correct answers from 0 to 1, e.g. 0.7")]
    if "gold_warn_below" not in errors and "gold_exclude_below" not in errors and (
        values["gold_exclude_below"] > values["gold_warn_below"]
    ):
        errors["gold_exclude_below"] = [
            _("at most the warning threshold gold_warn_below (%(warn)s): an annotator is warned before being "
              "excluded") % {"warn": values["gold_warn_below"]}
        ]
    minimum = values["gold_min_seen"]
    if isinstance(minimum, bool) or not isinstance(minimum, int) or not 1 <= minimum <= MAX_GOLD_MIN_SEEN:
        errors["gold_min_seen"] = [_("a whole number of gold items from 1 to %(limit)d")
                                   % {"limit": MAX_GOLD_MIN_SEEN}]
    return errors


def qualification_pairs_refresh(*, campaign: Campaign) -> list[list[str]]:
    """Store on the campaign the language pairs that have qualification items (what next() gates on)."""
    pairs = sorted(
        [prompt, response] for prompt, response in
        Item.objects.filter(campaign=campaign, kind=Item.Kind.QUALIFICATION)
        .order_by().values_list("prompt_language_id", "response_language_id").distinct()
    )
    Campaign.objects.filter(pk=campaign.pk).update(qualification_pairs=pairs)
    campaign.qualification_pairs = pairs
    return pairs


# --- gold and qualification records --------------------------------------------------------------------------------


def gold_record(*, campaign_id: int, annotator_id: int, pair: tuple[str, str], kind: str) -> tuple[int, int]:
    """(judged, right): the annotator's current judgments of the pair's gold (or qualification) items, checked."""
    rows = list(
        Judgment.objects.filter(
            annotator_id=annotator_id, item__campaign_id=campaign_id, item__kind=kind,
            item__prompt_language_id=pair[0], item__response_language_id=pair[1],
        ).values_list("item_id", "ranks", "flags", "item__gold")
    )
    positions = dict(Response.objects.filter(item_id__in=[row[0] for row in rows]).values_list("id", "position"))
    right = sum(gold_correct(gold, by_position(ranks, positions), by_position(flags or {}, positions))
                for _item_id, ranks, flags, gold in rows)
    return len(rows), right


def gold_judged(*, item: Item, annotator_id: int) -> None:
    """After a judgment of a gold or qualification item (new or revised): bring the annotator's record up to date."""
    pair = (item.prompt_language_id, item.response_language_id)
    campaign = Campaign.objects.get(pk=item.campaign_id)
    if item.kind == Item.Kind.QUALIFICATION:
        _qualification_judged(campaign, annotator_id, pair)
        return
    seen, correct = gold_record(campaign_id=campaign.pk, annotator_id=annotator_id, pair=pair, kind=Item.Kind.GOLD)
    standing, _created = AnnotatorStanding.objects.get_or_create(
        campaign=campaign, annotator_id=annotator_id, prompt_language_id=pair[0], response_language_id=pair[1]
    )
    thresholds = Thresholds(min_seen=campaign.gold_min_seen, warn_below=campaign.gold_warn_below,
                            exclude_below=campaign.gold_exclude_below)
    state, reason = standing_state(seen=seen, correct=correct, current=standing.state, thresholds=thresholds)
    now = timezone.now()
    changes: dict[str, Any] = {"gold_seen": seen, "gold_correct": correct, "updated_at": now}
    if state != standing.state:
        changes.update(state=state, state_changed_at=now, state_reason=reason[:500])
    AnnotatorStanding.objects.filter(pk=standing.pk).update(**changes)


def _qualification_judged(campaign: Campaign, annotator_id: int, pair: tuple[str, str]) -> None:
    """Decide the qualification once the annotator has judged every qualification item of the pair."""
    key = {"campaign": campaign, "annotator_id": annotator_id, "prompt_language_id": pair[0],
           "response_language_id": pair[1]}
    if QualificationResult.objects.filter(**key).exists():
        return  # decided: revising an answer afterwards changes nothing
    total = Item.objects.filter(campaign=campaign, kind=Item.Kind.QUALIFICATION, prompt_language_id=pair[0],
                                response_language_id=pair[1]).count()
    answered, correct = gold_record(campaign_id=campaign.pk, annotator_id=annotator_id, pair=pair,
                                    kind=Item.Kind.QUALIFICATION)
    if answered < total:
        return
    QualificationResult.objects.create(
        **key, answered=answered, correct=correct, pass_mark=campaign.qualification_pass_mark,
        passed=qualification_passed(answered=answered, correct=correct, pass_mark=campaign.qualification_pass_mark),
    )


# --- exclusion -----------------------------------------------------------------------------------------------------


def _user_named(user: Any) -> AbstractBaseUser | None:
    model = get_user_model()
    if isinstance(user, int) and not isinstance(user, bool):
        return model.objects.filter(pk=user).first() if 0 < user < 2**63 else None
    if isinstance(user, str) and user.strip():
        if user.strip().isdigit() and len(user.strip()) < 19:
            found = model.objects.filter(pk=int(user.strip())).first()
            if found is not None:
                return found
        return model.objects.filter(**{model.USERNAME_FIELD: user.strip()}).first()
    return None


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 date-time, or a date (its midnight in the server's time zone); None when it is neither."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = parse_datetime(value.strip())
        if moment is None and (day := parse_date(value.strip())) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def exclusion_check(*, campaign: Campaign, user: Any, reason: Any,
                    since: Any) -> tuple[AbstractBaseUser | None, datetime | None, dict[str, list[str]]]:
    """(annotator, since as a date-time, errors by field) of an exclusion as asked for."""
    errors: dict[str, list[str]] = {}
    annotator = _user_named(user)
    if annotator is None:
        errors["user"] = [_("no user %(user)r: give the user's id or username") % {"user": str(user)[:40]}]
    elif not Judgment.objects.filter(item__campaign=campaign, annotator=annotator).exists():
        errors["user"] = [_("%(user)r has no judgment in campaign %(campaign)r: there is nothing of theirs to exclude")
                          % {"user": annotator.get_username(), "campaign": campaign.name}]
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
        errors["reason"] = [_("required: why, in at most %(limit)d characters (kept with the exclusion and named in "
                              "the exports it applies to)") % {"limit": MAX_REASON_CHARS}]
    moment = None
    if since not in (None, ""):
        moment = _moment(since)
        if moment is None:
            errors["since"] = [_("a date (2026-03-01) or an ISO 8601 date-time (2026-03-01T09:00:00Z); leave it out "
                                 "to exclude every judgment")]
    return annotator, moment, errors


@transaction.atomic
def exclusion_create(*, campaign: Campaign, user: Any, reason: Any, since: Any = None,
                     created_by: AbstractBaseUser | None = None) -> tuple[Exclusion, bool]:
    """Leave an annotator's judgments in the campaign out of the exports (all, or those from `since` on); they get
    no more items of it. A second exclusion of the same annotator replaces the first. Returns (exclusion, created)."""
    annotator, moment, errors = exclusion_check(campaign=campaign, user=user, reason=reason, since=since)
    if errors:
        raise InvalidInput(_("invalid exclusion; nothing was stored"), field_errors=errors)
    return Exclusion.objects.update_or_create(
        campaign=campaign, annotator=annotator,
        defaults={"reason": reason.strip(), "since": moment, "created_at": timezone.now(),
                  "created_by": created_by if created_by is not None and created_by.is_authenticated else None},
    )


# --- adjudication --------------------------------------------------------------------------------------------------


def may_adjudicate(user: AbstractBaseUser) -> bool:
    """Reviewers: any active account holding annotation.add_adjudication (the group "Reviewers"; admins too)."""
    return bool(getattr(user, "is_active", False) and user.has_perm("annotation.add_adjudication"))


@transaction.atomic
def adjudication_record(*, item: Item, reviewer: AbstractBaseUser, ranks: Any, wrong_language: Any = (),
                        note: Any = "") -> Adjudication:
    """Store (or replace) a reviewer's final ranking of an item: every response ranked 1..n, ties allowed."""
    from annotation.services.judgments import check_ranking

    if item.kind != Item.Kind.TASK:
        raise InvalidInput(_("item %(item)r is a %(kind)s item: its answer is known, nothing to adjudicate")
                           % {"item": item.external_id, "kind": item.kind}, field="item")
    response_ids = list(Response.objects.filter(item=item).values_list("id", flat=True))
    clean_ranks, _flags, errors = check_ranking(response_ids, ranks, None, [])
    known = {str(response_id) for response_id in response_ids}
    wrong = sorted({str(value) for value in wrong_language or ()}, key=lambda value: (len(value), value))
    if not all(value in known for value in wrong):
        errors["wrong_language"] = [_("only responses of this item can be marked as in the wrong language")]
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        errors["note"] = [_("text of at most %(limit)d characters") % {"limit": MAX_NOTE_CHARS}]
    if errors:
        raise InvalidInput(_("invalid final ranking; nothing was stored"), field_errors=errors)
    now = timezone.now()
    adjudication, _created = Adjudication.objects.update_or_create(
        item=item, defaults={"ranks": clean_ranks, "wrong_language": [int(value) for value in wrong],
                             "note": note.strip(), "reviewer": reviewer, "updated_at": now},
    )
    return adjudication


def reviewer_group_sync(**kwargs) -> None:
    """post_migrate: the group "Reviewers" exists and may adjudicate. Put trusted native speakers in it; they need
    not be staff."""
    using = kwargs.get("using", "default")
    group, _created = Group.objects.using(using).get_or_create(name=REVIEWER_GROUP)
    group.permissions.add(*Permission.objects.using(using).filter(
        content_type__app_label="annotation", codename__in=REVIEWER_PERMISSIONS))


# --- what the exports leave out ------------------------------------------------------------------------------------


class ExclusionRules:
    """The exclusions in force for one export run: an admin's (all of an annotator's judgments in the campaign, or
    those made from `since` on) and gold's (an annotator's judgments of one language pair). Counts what each rule
    left out, for the export's record and dataset card."""

    def __init__(self, campaign_id: int) -> None:
        self.admin = {
            exclusion.annotator_id: exclusion
            for exclusion in Exclusion.objects.filter(campaign_id=campaign_id).select_related("annotator")
        }
        self.gold = {
            (standing.annotator_id, standing.prompt_language_id, standing.response_language_id): standing
            for standing in AnnotatorStanding.objects.filter(campaign_id=campaign_id, state=EXCLUDED)
            .select_related("annotator")
        }
        self.dropped: dict[tuple, int] = {}

    def drops(self, annotator_id: int, pair: tuple[str, str], created_at: datetime) -> bool:
        """Whether the judgment leaves the export (and, if so, counted against the rule that took it)."""
        exclusion = self.admin.get(annotator_id)
        if exclusion is not None and (exclusion.since is None or created_at >= exclusion.since):
            key: tuple = ("admin", annotator_id)
        elif (annotator_id, *pair) in self.gold:
            key = ("gold", annotator_id, *pair)
        else:
            return False
        self.dropped[key] = self.dropped.get(key, 0) + 1
        return True

    def summary(self) -> list[dict]:
        """Every rule in force, with the judgments it left out (0 when the annotator had none in the export)."""
        rules = [
            {"source": "admin", "user": exclusion.annotator.get_username(), "user_id": annotator_id,
             "since": exclusion.since.isoformat() if exclusion.since else None, "reason": exclusion.reason,
             "judgments": self.dropped.get(("admin", annotator_id), 0)}
            for annotator_id, exclusion in sorted(self.admin.items())
        ]
        rules += [
            {"source": "gold", "user": standing.annotator.get_username(), "user_id": key[0],
             "prompt_language": key[1], "response_language": key[2], "reason": standing.state_reason,
             "judgments": self.dropped.get(("gold", *key), 0)}
            for key, standing in sorted(self.gold.items())
        ]
        return rules
