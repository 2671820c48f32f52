"""Reads: who may see what, progress and statistics."""

from __future__ import annotations

from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, F, Q, QuerySet, Sum
from django.http import Http404

from annotation import sql
from annotation.models import AnnotatorProfile, Campaign, Item, Judgment, Lease, Response, Skip
from crossfeed.permissions import user_may

# Every next and submit needs the annotator's languages: three queries uncached. They change rarely (an admin
# edits a profile), so each process keeps them for a minute; services that change a profile forget them at once.
LANGUAGES_CACHE_SECONDS = 60


def _languages_key(user_id: int) -> str:
    return f"crossfeed:annotator-languages:{user_id}"


def annotator_languages(user: AbstractBaseUser) -> tuple[list[str], list[str]]:
    """(native, readable) language codes of the user; ([], []) when they have no annotator profile."""
    if not user.is_authenticated:
        return [], []
    cached = getattr(user, "_crossfeed_languages", None) or cache.get(_languages_key(user.pk))
    if cached is None:
        # One raw statement, not the ORM's three: every process reads each annotator's languages again once a
        # LANGUAGES_CACHE_SECONDS, so under load this miss is a steady part of the API's cost (docs/benchmarks.md).
        found = sql.annotator_languages(user.pk)
        cached = ([], []) if found is None else AnnotatorProfile.codes_as_read(*found)
        cache.set(_languages_key(user.pk), cached, LANGUAGES_CACHE_SECONDS)
    user._crossfeed_languages = cached
    return cached


def forget_annotator_languages(user_id: int) -> None:
    cache.delete(_languages_key(user_id))


def is_annotator(user: AbstractBaseUser) -> bool:
    """An annotator is a user with a profile that names at least one native language."""
    return bool(annotator_languages(user)[0])


def campaigns_visible_to(user: AbstractBaseUser) -> QuerySet[Campaign]:
    """Admins see every campaign; annotators all but drafts (closed ones stay readable, e.g. their own work)."""
    if user_may(user, "annotation.view_campaign"):
        return Campaign.objects.all()
    if not user.is_authenticated:
        return Campaign.objects.none()
    return Campaign.objects.exclude(status=Campaign.Status.DRAFT)


def campaign_visible_to(user: AbstractBaseUser, status: str) -> bool:
    """campaigns_visible_to's rule for one campaign already read, by its status."""
    return user_may(user, "annotation.view_campaign") or (user.is_authenticated and status != Campaign.Status.DRAFT)


def items_visible_to(user: AbstractBaseUser) -> QuerySet[Item]:
    """Items the user may read: admins all; an annotator those they may judge or already judged."""
    if user_may(user, "annotation.view_item"):
        return Item.objects.all()
    native, reading = annotator_languages(user)
    if not native:
        return Item.objects.none()
    eligible = Q(response_language__in=native) & (Q(prompt_language__in=reading) | Q(pivot_language__in=reading))
    return Item.objects.filter(campaign__in=campaigns_visible_to(user)).filter(
        eligible | Q(judgments__annotator=user)
    ).distinct()


def item_for_annotator(user: AbstractBaseUser, item_id: int) -> Item | None:
    return items_visible_to(user).select_related("campaign").filter(pk=item_id).first()


def item_judgeable_by(user: AbstractBaseUser, item_id: int) -> Item | None:
    """The item, if this user may judge it: an annotator of its languages (staff rights do not count here), in a
    campaign annotators can see, or one they already judged. One query by primary key, checked in Python: this
    runs on every submit. The Item and its Campaign carry only the fields judging needs."""
    return judgeable_item(user, sql.item_for_judging(item_id) if annotator_languages(user)[0] else None)


def judgeable_item(user: AbstractBaseUser, row: tuple | None) -> Item | None:
    """item_judgeable_by on the item's row (sql.item_for_judging) read already, e.g. by sql.judging_context."""
    native, reading = annotator_languages(user)
    if row is None or not native:
        return None
    pk, campaign_id, prompt_language, pivot_language, response_language, name, status, flags, kind, task = row
    if status == Campaign.Status.DRAFT:
        return None
    eligible = response_language in native and (prompt_language in reading or pivot_language in reading)
    if not eligible and sql.judgment_id(item_id=pk, annotator_id=user.pk) is None:
        return None
    campaign = Campaign(id=campaign_id, name=name, status=status, flag_vocabulary=sql.decode_json(flags), task=task)
    return Item(id=pk, campaign=campaign, prompt_language_id=prompt_language, pivot_language_id=pivot_language,
                response_language_id=response_language, kind=kind)


def live_lease(user: AbstractBaseUser, item: Item):
    return Lease.objects.filter(item=item, annotator=user).first()


def campaign_progress(campaign: Campaign) -> dict:
    # Gold and qualification items are checks, not work: they never count toward coverage.
    totals = Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK).aggregate(
        items=Count("id"),
        complete=Count("id", filter=Q(judgment_count__gte=F("target"))),
        judgments=Sum("judgment_count"),
        wanted=Sum("target"),
    )
    wanted = totals["wanted"] or 0
    judgments = totals["judgments"] or 0
    return {
        "items": totals["items"],
        "complete_items": totals["complete"],
        "judgments": judgments,
        "judgments_wanted": wanted,
        "percent": round(100 * judgments / wanted, 1) if wanted else 0.0,
    }


def annotator_progress(user: AbstractBaseUser, campaign: Campaign) -> dict:
    """How many items this annotator judged in the campaign, and how many more they could still take.

    `done` counts gold items too: a count that stood still after a submit would tell the annotator that the item
    was a gold one."""
    done = Judgment.objects.filter(item__campaign=campaign, annotator=user).count()
    native, reading = annotator_languages(user)
    open_items = (
        Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK, response_language__in=native)
        .filter(Q(prompt_language__in=reading) | Q(pivot_language__in=reading))
        .exclude(judgments__annotator=user)
        .exclude(skips__annotator=user)
        .filter(judgment_count__lt=F("target"))
        .count()
    )
    total = done + open_items
    return {"done": done, "remaining": open_items, "percent": round(100 * done / total, 1) if total else 100.0}


def language_pair_rows(campaign: Campaign) -> list[dict]:
    """Per (prompt language, response language): items, judgments and complete items."""
    rows = (
        Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK)
        .values("prompt_language", "response_language")
        .annotate(
            items=Count("id"),
            judgments=Sum("judgment_count"),
            complete_items=Count("id", filter=Q(judgment_count__gte=F("target"))),
        )
        .order_by("prompt_language", "response_language")
    )
    return [
        {
            "prompt_language": row["prompt_language"],
            "response_language": row["response_language"],
            "items": row["items"],
            "judgments": row["judgments"] or 0,
            "complete_items": row["complete_items"],
        }
        for row in rows
    ]


def item_with_responses(item_id: int) -> Item:
    return Item.objects.prefetch_related("responses").get(pk=item_id)


class ItemRow(NamedTuple):
    id: int
    campaign_id: int
    prompt_text: str
    prompt_language_id: str
    pivot_text: str
    pivot_language_id: str | None


class ResponseRow(NamedTuple):
    id: int
    text: str
    language_id: str
    detected_language: str
    detected_confidence: float | None


def item_and_responses(item_id: int, *, found: tuple | None = None) -> tuple[ItemRow, list[ResponseRow]]:
    """The item and its responses, for the next-item payload: two primary-key reads, no ORM query building and no
    model instances (this runs on every `next`; serializers.item_payload reads the same attribute names).
    `found`: sql.item_with_responses's answer read already (sql.lease_at_once reads it with the lease)."""
    found = found if found is not None else sql.item_with_responses(item_id)
    if found is None:
        raise Item.DoesNotExist(f"item {item_id} does not exist")
    item, rows = found
    return ItemRow(*item), [ResponseRow(*row) for row in rows]


def campaign_for_leasing(user: AbstractBaseUser, campaign_id: int) -> Campaign:
    """The campaign, if the user can see it (campaigns_visible_to), with the fields lease_next needs; else 404.
    One primary-key read: this runs on every `next`."""
    row = sql.campaign_for_leasing(campaign_id)
    if row is None or not campaign_visible_to(user, row[2]):
        raise Http404("No Campaign matches the given query.")
    pk, name, status, lease_minutes, gold_rate, qualification_pairs, task = row
    return Campaign(id=pk, name=name, status=status, lease_minutes=lease_minutes, gold_rate=gold_rate,
                    qualification_pairs=sql.decode_json(qualification_pairs), task=task)


def judgments_by_item(campaign: Campaign):
    """Yield ((prompt language, response language), [(annotator, ranks, flags)]) per judged item, streaming."""
    for pair, _response_ids, rows in judgments_by_item_with_ids(campaign):
        yield pair, rows


def judgment_of(user: AbstractBaseUser, item: Item) -> Judgment | None:
    return Judgment.objects.filter(item=item, annotator=user).first()


def judgments_of(user: AbstractBaseUser, campaign: Campaign) -> QuerySet[Judgment]:
    return (
        Judgment.objects.filter(item__campaign=campaign, annotator=user)
        .select_related("item")
        .order_by("-updated_at", "-id")
    )


def judgments_by_item_with_ids(campaign: Campaign):
    """Like judgments_by_item, with each item's response ids (ascending) for pair derivation. Items to rank only:
    gold and qualification items are checks of the annotators, not data."""
    response_ids: dict[int, list[int]] = {}
    for item_id, response_id in (
        # Responses of items an import is still writing are nobody's yet (Response has no manager that hides them).
        Response.objects.filter(item__campaign=campaign, item__staged_by__isnull=True, item__kind=Item.Kind.TASK)
        .order_by("item_id", "id").values_list("item_id", "id")
    ):
        response_ids.setdefault(item_id, []).append(response_id)
    rows = (
        Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK)
        .order_by("item_id", "id")
        .values_list("item_id", "item__prompt_language_id", "item__response_language_id", "annotator_id", "ranks",
                     "flags")
    )
    current, pair, bucket = None, None, []
    for item_id, prompt_lang, response_lang, annotator_id, ranks, flags in rows.iterator(chunk_size=2000):
        if item_id != current and bucket:
            yield pair, response_ids.get(current, []), bucket
            bucket = []
        current, pair = item_id, (prompt_lang, response_lang)
        bucket.append((annotator_id, ranks, flags))
    if bucket:
        yield pair, response_ids.get(current, []), bucket


def skips_of(user: AbstractBaseUser, campaign: Campaign) -> QuerySet[Skip]:
    """The annotator's own skips in a campaign, newest first (listed on My judgments, each can be undone)."""
    return Skip.objects.filter(item__campaign=campaign, annotator=user).select_related("item").order_by("-created_at",
                                                                                                      "-id")
