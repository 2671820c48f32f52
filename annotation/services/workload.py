"""Workload per language pair of a campaign (docs/campaigns.md#workload): what is left, who can do it, how fast it
goes, and when it will be done at that pace.

Who can take a pair's items is the rule that leasing applies (selectors.items_visible_to): a native speaker of the
response language who reads the prompt language, or the pivot language of one of the pair's open items; an
inactive account, an annotator excluded from the campaign or the pair, or one who failed the pair's qualification
does not count (excluded_annotators). Only items to rank count: gold and qualification items are checks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from annotation.models import (
    AnnotatorProfile,
    AnnotatorStanding,
    Campaign,
    Exclusion,
    Item,
    Judgment,
    QualificationResult,
)

Pair = tuple[str, str]
RATE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class PairWorkload:
    prompt_language: str
    response_language: str
    items: int
    items_left: int
    judgments_left: int
    judgments_wanted_per_item: int
    annotators: list[str]  # usernames of those who can take the pair's items
    active_last_day: int  # of whom judged in the pair in the last day
    judgments_last_day: int
    judgments_per_hour: float
    finish_at: datetime | None  # at the last day's pace; None when done or when nothing moved in the last day

    @property
    def short_of_annotators(self) -> bool:
        """Each item needs k different annotators: fewer than k who can take the pair means it never completes."""
        return self.items_left > 0 and len(self.annotators) < self.judgments_wanted_per_item

    def as_dict(self) -> dict:
        return {
            "pair": f"{self.prompt_language}→{self.response_language}", "prompt_language": self.prompt_language,
            "response_language": self.response_language, "items": self.items, "items_left": self.items_left,
            "judgments_left": self.judgments_left, "annotators": len(self.annotators),
            "annotator_names": self.annotators, "active_last_day": self.active_last_day,
            "judgments_last_day": self.judgments_last_day, "judgments_per_hour": self.judgments_per_hour,
            "finish_at": self.finish_at.isoformat() if self.finish_at else None,
            "short_of_annotators": self.short_of_annotators,
        }


def excluded_annotators(*, campaign: Campaign) -> set[tuple[int, Pair | None]]:
    """{(annotator id, pair, or None for every pair)} who get no items to rank, by the quality part's rules that
    leasing applies (annotation/services/assignment.py): an admin's exclusion from the campaign, an exclusion from a
    pair by gold, a failed qualification for a pair."""
    excluded: set[tuple[int, Pair | None]] = {
        (annotator_id, None) for annotator_id in Exclusion.objects.filter(campaign=campaign)
        .values_list("annotator_id", flat=True)}
    closed = (AnnotatorStanding.objects.filter(campaign=campaign, state=AnnotatorStanding.State.EXCLUDED),
              QualificationResult.objects.filter(campaign=campaign, passed=False))
    for queryset in closed:
        for annotator_id, prompt, response in queryset.values_list("annotator_id", "prompt_language_id",
                                                                   "response_language_id"):
            excluded.add((annotator_id, (prompt, response)))
    return excluded


def campaign_workload(*, campaign: Campaign, now: datetime | None = None) -> list[PairWorkload]:
    now = now or timezone.now()
    since = now - RATE_WINDOW
    open_items = Q(judgment_count__lt=F("target"))
    # Items to rank only: gold and qualification items are checks that never fill up (their target is the column's
    # largest value) and count toward no coverage.
    tasks = Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK)
    rows = (tasks.values("prompt_language_id", "response_language_id")
            .annotate(items=Count("id"), items_left=Count("id", filter=open_items),
                      judgments_left=Sum(F("target") - F("judgment_count"), filter=open_items))
            .order_by("prompt_language_id", "response_language_id"))
    pivots: dict[Pair, set[str]] = defaultdict(set)
    for prompt, response, pivot in (tasks.filter(open_items, pivot_language__isnull=False)
                                    .values_list("prompt_language_id", "response_language_id", "pivot_language_id")
                                    .distinct()):
        pivots[(prompt, response)].add(pivot)
    recent: dict[Pair, dict[int, int]] = defaultdict(dict)
    for prompt, response, annotator_id, n in (
        Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK, created_at__gte=since)
        .values_list("item__prompt_language_id", "item__response_language_id", "annotator_id")
        .annotate(n=Count("id")).order_by()
    ):
        recent[(prompt, response)][annotator_id] = n
    response_languages = {row["response_language_id"] for row in rows}
    people = [
        (profile.user_id, profile.user.get_username(), *profile.language_codes())
        for profile in AnnotatorProfile.objects.filter(native_languages__in=response_languages, user__is_active=True)
        .distinct().select_related("user").prefetch_related("native_languages", "reading_languages")
    ]
    excluded = excluded_annotators(campaign=campaign)
    result = []
    for row in rows:
        pair = (row["prompt_language_id"], row["response_language_id"])
        readable = {pair[0]} | pivots.get(pair, set())
        annotators = sorted(
            (name for user_id, name, native, reading in people
             if pair[1] in native and readable & set(reading)
             and (user_id, pair) not in excluded and (user_id, None) not in excluded),
            key=str.lower,
        )
        last_day = sum(recent.get(pair, {}).values())
        per_hour = last_day / (RATE_WINDOW.total_seconds() / 3600)
        left = row["judgments_left"] or 0
        finish = now + timedelta(hours=left / per_hour) if left and per_hour else None
        result.append(PairWorkload(
            prompt_language=pair[0], response_language=pair[1], items=row["items"], items_left=row["items_left"],
            judgments_left=left, judgments_wanted_per_item=campaign.overlap, annotators=annotators,
            active_last_day=len(recent.get(pair, {})), judgments_last_day=last_day,
            judgments_per_hour=round(per_hour, 2), finish_at=finish,
        ))
    return result
