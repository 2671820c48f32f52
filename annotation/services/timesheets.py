"""Active time and pay per annotator (docs/campaigns.md#time-and-pay).

Active time comes from evidence that the annotator was working, each a span of time with the language pair it
belongs to (None when unknown):
- a judgment: the `seconds_spent` before its submit (from the item appearing to the submit), at most the idle limit
  (how long the item stayed open says nothing of the time beyond; the pings do);
- every submission (revisions too): the moment it was stored;
- an activity ping (static/js/annotate.js): the minute it was sent in, as the annotation page posts one at most once a
  minute and only after the annotator did something on a visible page.

Evidence less than the idle limit apart joins one session, and the whole session counts, gaps included: reading a
long response shows no activity but is work. A longer gap is cut: it counts nothing. Each second of a session belongs
to the language pair of the next evidence to end (the item being worked towards); a ping on a page without an item
takes the pair of the next evidence that has one, else of the last one before it. A session is split at midnight
in the server's time zone (TIME_ZONE), so every second belongs to one day.

`active_time` is the pure computation; `time_report` reads the evidence of a campaign and a period, and prices it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.gold import by_position, gold_correct
from annotation.models import ActivityPing, Campaign, Item, Judgment, JudgmentSubmission, PayRate, Response
from crossfeed.errors import InvalidInput

Pair = tuple[str, str]
PING_SPAN = timedelta(seconds=60)
# A report covers at most about a year: one request reads every ping and judgment of the period.
MAX_REPORT_DAYS = 366
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Evidence:
    start: datetime
    end: datetime
    pair: Pair | None


def idle_limit() -> timedelta:
    return timedelta(seconds=settings.CROSSFEED["IDLE_LIMIT_SECONDS"])


def judgment_evidence(*, submitted_at: datetime, seconds_spent: int | None, pair: Pair | None,
                      limit: timedelta) -> Evidence:
    spent = min(timedelta(seconds=seconds_spent or 0), limit)
    return Evidence(submitted_at - spent, submitted_at, pair)


def ping_evidence(*, minute: datetime, pair: Pair | None) -> Evidence:
    return Evidence(minute, minute + PING_SPAN, pair)


Totals = dict[tuple[date, Pair | None], float]


def active_time(evidence: Iterable[Evidence], *, limit: timedelta, tz: tzinfo) -> Totals:
    """Seconds of active time per (day in `tz`, language pair), by the rules in this module's docstring."""
    totals: Totals = defaultdict(float)
    session: list[Evidence] = []
    session_end = datetime.min.replace(tzinfo=tz)
    for piece in sorted(evidence, key=lambda e: (e.start, e.end)):
        if session and piece.start - session_end > limit:
            _attribute(session, totals, tz)
            session = []
        session_end = max(session_end, piece.end) if session else piece.end
        session.append(piece)
    if session:
        _attribute(session, totals, tz)
    return dict(totals)


def _attribute(session: list[Evidence], totals: dict, tz: tzinfo) -> None:
    ordered = sorted(session, key=lambda e: e.end)
    pairs = _known_pairs([piece.pair for piece in ordered])
    cursor = min(piece.start for piece in session)
    for piece, pair in zip(ordered, pairs, strict=True):
        if piece.end > cursor:
            _add_by_day(totals, cursor, piece.end, pair, tz)
            cursor = piece.end


def _known_pairs(pairs: list[Pair | None]) -> list[Pair | None]:
    """Each unknown pair becomes the next known one, or (at the end of a session) the last known one."""
    resolved = list(pairs)
    following = None
    for index in range(len(resolved) - 1, -1, -1):
        if resolved[index] is None:
            resolved[index] = following
        else:
            following = resolved[index]
    preceding = None
    for index, pair in enumerate(resolved):
        if pair is None:
            resolved[index] = preceding
        else:
            preceding = pair
    return resolved


def _add_by_day(totals: dict, start: datetime, end: datetime, pair: Pair | None, tz: tzinfo) -> None:
    while start < end:
        day = start.astimezone(tz).date()
        midnight = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
        stop = min(end, midnight)
        totals[(day, pair)] += (stop - start).total_seconds()
        start = stop


# --- rates ------------------------------------------------------------------------------------------------------


def pay_rate_for(rates: list[PayRate], *, annotator_id: int, pair: Pair | None) -> PayRate | None:
    """The most specific rate of the campaign that fits this annotator and language pair (PayRate.specificity); time
    whose pair is unknown gets only a rate that names no languages."""
    fitting = [
        rate for rate in rates
        if rate.annotator_id in (None, annotator_id)
        and (rate.response_language_id is None or (pair is not None and rate.response_language_id == pair[1]))
        and (rate.prompt_language_id is None or (pair is not None and rate.prompt_language_id == pair[0]))
    ]
    return max(fitting, key=lambda rate: rate.specificity, default=None)


def _amount(seconds: float, rate: PayRate | None) -> Decimal | None:
    if rate is None:
        return None
    return (Decimal(round(seconds)) * rate.hourly_rate / 3600).quantize(CENT, rounding=ROUND_HALF_UP)


# --- gold accuracy in the period ----------------------------------------------------------------------------------


def gold_accuracy_in_period(*, campaign: Campaign, start: datetime, end: datetime) -> dict[tuple[int, Pair], dict]:
    """{(annotator id, pair): {"gold_seen", "gold_accuracy"}} over the gold items judged (first submitted) in
    [start, end), each checked against its answer as it stands now, by the quality part's rule (annotation/gold.py;
    annotation/services/quality.py's gold_record does the same for all time)."""
    rows = list(
        Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.GOLD, created_at__gte=start,
                                created_at__lt=end)
        .values_list("annotator_id", "item__prompt_language_id", "item__response_language_id", "item_id", "ranks",
                     "flags", "item__gold")
    )
    positions = dict(Response.objects.filter(item_id__in={row[3] for row in rows}).values_list("id", "position"))
    counts: dict[tuple[int, Pair], list[int]] = defaultdict(lambda: [0, 0])
    for annotator_id, prompt, response, _item_id, ranks, flags, gold in rows:
        right = gold_correct(gold, by_position(ranks, positions), by_position(flags or {}, positions))
        counts[(annotator_id, (prompt, response))][0] += 1
        counts[(annotator_id, (prompt, response))][1] += int(right)
    return {key: {"gold_seen": seen, "gold_accuracy": round(right / seen, 4)} for key, (seen, right) in counts.items()}


# --- the report -------------------------------------------------------------------------------------------------


def report_period(*, date_from: str | None, date_to: str | None, today: date | None = None) -> tuple[date, date]:
    """The report's days from query strings (ISO dates, both included); by default this month up to today."""
    today = today or timezone.localdate()
    errors: dict[str, list[str]] = {}
    parsed = {}
    for name, raw, default in (("from", date_from, today.replace(day=1)), ("to", date_to, today)):
        if raw in (None, ""):
            parsed[name] = default
            continue
        try:
            parsed[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = [_("%(value)r is not a date: write it as YYYY-MM-DD, e.g. 2025-03-31.")
                            % {"value": str(raw)[:40]}]
    if not errors and parsed["from"] > parsed["to"]:
        errors["to"] = [_("The period ends before it starts: %(to)s is before %(from)s.")
                        % {"to": parsed["to"].isoformat(), "from": parsed["from"].isoformat()}]
    if not errors and (parsed["to"] - parsed["from"]).days + 1 > MAX_REPORT_DAYS:
        errors["to"] = [_("A report covers at most %(days)d days; ask for several shorter periods.")
                        % {"days": MAX_REPORT_DAYS}]
    if errors:
        raise InvalidInput("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()),
                           field_errors=errors)
    return parsed["from"], parsed["to"]


def campaign_evidence(*, campaign: Campaign, start: datetime, end: datetime,
                      limit: timedelta) -> dict[int, list[Evidence]]:
    """Every annotator's evidence that can touch [start, end): evidence more than the idle limit outside the period
    can join no session that reaches into it."""
    since, until = start - limit - PING_SPAN, end + limit + PING_SPAN
    evidence: dict[int, list[Evidence]] = defaultdict(list)
    for annotator_id, updated_at, seconds, prompt, response in (
        Judgment.objects.filter(item__campaign=campaign, updated_at__gte=since, updated_at__lt=until)
        .values_list("annotator_id", "updated_at", "seconds_spent", "item__prompt_language_id",
                     "item__response_language_id").iterator(chunk_size=2000)
    ):
        evidence[annotator_id].append(judgment_evidence(submitted_at=updated_at, seconds_spent=seconds,
                                                        pair=(prompt, response), limit=limit))
    for annotator_id, created_at, prompt, response in (
        JudgmentSubmission.objects.filter(judgment__item__campaign=campaign, created_at__gte=since,
                                          created_at__lt=until)
        .values_list("annotator_id", "created_at", "judgment__item__prompt_language_id",
                     "judgment__item__response_language_id").iterator(chunk_size=2000)
    ):
        evidence[annotator_id].append(Evidence(created_at, created_at, (prompt, response)))
    for annotator_id, minute, item_campaign, prompt, response in (
        ActivityPing.objects.filter(campaign=campaign, minute__gte=since, minute__lt=until)
        .values_list("annotator_id", "minute", "item__campaign_id", "item__prompt_language_id",
                     "item__response_language_id").iterator(chunk_size=2000)
    ):
        # The page names its item unchecked (the ping reads nothing): an item of another campaign names no pair.
        pair = (prompt, response) if item_campaign == campaign.id else None
        evidence[annotator_id].append(ping_evidence(minute=minute, pair=pair))
    return evidence


def time_report(*, campaign: Campaign, date_from: date, date_to: date) -> dict:
    """Per annotator: active time per day and per language pair, items judged, gold accuracy and the amount due for
    the days from `date_from` to `date_to` (both included, in the server's time zone)."""
    tz = timezone.get_default_timezone()  # the server's TIME_ZONE: one calendar for every annotator
    start = datetime.combine(date_from, time.min, tzinfo=tz)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz)
    limit = idle_limit()
    rates = list(PayRate.objects.filter(campaign=campaign))
    currency = rates[0].currency if rates else ""
    gold = gold_accuracy_in_period(campaign=campaign, start=start, end=end)

    seconds: dict[int, dict[tuple[date, Pair | None], float]] = {}
    for annotator_id, pieces in campaign_evidence(campaign=campaign, start=start, end=end, limit=limit).items():
        by_day = {key: value for key, value in active_time(pieces, limit=limit, tz=tz).items()
                  if date_from <= key[0] <= date_to}
        if by_day:
            seconds[annotator_id] = by_day
    items: dict[int, dict[Pair, int]] = defaultdict(dict)
    for row in (Judgment.objects.filter(item__campaign=campaign, created_at__gte=start, created_at__lt=end)
                .values("annotator_id", "item__prompt_language_id", "item__response_language_id")
                .annotate(n=Count("id")).order_by()):
        items[row["annotator_id"]][(row["item__prompt_language_id"], row["item__response_language_id"])] = row["n"]

    people = set(seconds) | set(items)
    names = dict(get_user_model().objects.filter(pk__in=people).values_list("pk", "username"))
    annotators = []
    for annotator_id in sorted(people, key=lambda pk: names.get(pk, "").lower()):
        by_day = seconds.get(annotator_id, {})
        per_pair: dict[Pair | None, float] = defaultdict(float)
        per_day: dict[date, float] = defaultdict(float)
        for (day, pair), value in by_day.items():
            per_pair[pair] += value
            per_day[day] += value
        for judged_pair in items.get(annotator_id, {}):
            per_pair.setdefault(judged_pair, 0.0)
        pair_rows: list[dict[str, Any]] = []
        for pair in sorted(per_pair, key=lambda p: ("", "") if p is None else p):
            rate = pay_rate_for(rates, annotator_id=annotator_id, pair=pair)
            gold_row = gold.get((annotator_id, pair), {}) if pair else {}
            pair_rows.append({
                "pair": f"{pair[0]}→{pair[1]}" if pair else None,
                "prompt_language": pair[0] if pair else None,
                "response_language": pair[1] if pair else None,
                "active_seconds": round(per_pair[pair]),
                "active_hours": round(per_pair[pair] / 3600, 2),
                "items": items.get(annotator_id, {}).get(pair, 0) if pair else 0,
                "gold_seen": gold_row.get("gold_seen"),
                "gold_accuracy": gold_row.get("gold_accuracy"),
                "hourly_rate": None if rate is None else str(rate.hourly_rate),
                "amount_due": _amount(per_pair[pair], rate),
            })
        amounts = [row["amount_due"] for row in pair_rows if row["active_seconds"]]
        total_seconds = sum(per_pair.values())
        annotators.append({
            "user": names.get(annotator_id, str(annotator_id)),
            "user_id": annotator_id,
            "active_seconds": round(total_seconds),
            "hours": round(total_seconds / 3600, 2),
            "items": sum(items.get(annotator_id, {}).values()),
            "gold_accuracy": _overall_gold(pair_rows),
            # Missing while some of the time has no rate: a partial sum would read as the whole amount.
            "amount_due": None if None in amounts else str(sum(amounts, Decimal("0.00"))),
            "unpriced_seconds": sum(row["active_seconds"] for row in pair_rows if row["amount_due"] is None),
            "days": [{"date": day.isoformat(), "active_seconds": round(value), "hours": round(value / 3600, 2)}
                     for day, value in sorted(per_day.items())],
            "language_pairs": [{**row, "amount_due": None if row["amount_due"] is None else str(row["amount_due"])}
                               for row in pair_rows],
        })
    priced = [Decimal(row["amount_due"]) for row in annotators if row["amount_due"] is not None]
    return {
        "campaign": campaign.id,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "time_zone": str(tz),
        "idle_limit_seconds": round(limit.total_seconds()),
        "currency": currency,
        "annotators": annotators,
        "totals": {
            "active_seconds": sum(row["active_seconds"] for row in annotators),
            "hours": round(sum(row["active_seconds"] for row in annotators) / 3600, 2),
            "items": sum(row["items"] for row in annotators),
            "amount_due": str(sum(priced, Decimal("0.00"))),
            "unpriced_seconds": sum(row["unpriced_seconds"] for row in annotators),
        },
    }


def campaign_active_seconds(*, campaign: Campaign) -> dict[int, int]:
    """{annotator id: active seconds} in the campaign over all its time, by the same rules as the report (for the
    annotators list's `active_seconds`)."""
    limit = idle_limit()
    start = min(campaign.created_at, _first_evidence(campaign) or campaign.created_at)
    evidence = campaign_evidence(campaign=campaign, start=start, end=timezone.now() + timedelta(days=1), limit=limit)
    tz = timezone.get_default_timezone()
    return {annotator_id: round(sum(active_time(pieces, limit=limit, tz=tz).values()))
            for annotator_id, pieces in evidence.items()}


def _first_evidence(campaign: Campaign) -> datetime | None:
    # Judgments can be dated before the campaign row (imported or back-dated data): start from the earliest.
    firsts = [
        Judgment.objects.filter(item__campaign=campaign).aggregate(first=Min("updated_at"))["first"],
        JudgmentSubmission.objects.filter(judgment__item__campaign=campaign).aggregate(first=Min("created_at"))["first"],
        ActivityPing.objects.filter(campaign=campaign).aggregate(first=Min("minute"))["first"],
    ]
    return min((first for first in firsts if first is not None), default=None)


def _overall_gold(pair_rows: list[dict]) -> float | None:
    seen = [(row["gold_seen"], row["gold_accuracy"]) for row in pair_rows
            if row["gold_seen"] and row["gold_accuracy"] is not None]
    total = sum(n for n, _accuracy in seen)
    return round(sum(n * accuracy for n, accuracy in seen) / total, 4) if total else None


CSV_COLUMNS = ["user", "language_pair", "from", "to", "active_seconds", "active_hours", "items", "gold_seen",
               "gold_accuracy", "hourly_rate", "currency", "amount_due"]


def time_report_csv(report: dict) -> str:
    """One row per annotator and language pair of the period (the amount due per row; an empty language_pair is
    time on the annotation page without an item)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for annotator in report["annotators"]:
        for row in annotator["language_pairs"]:
            writer.writerow([
                _csv_safe(annotator["user"]), row["pair"] or "", report["from"], report["to"], row["active_seconds"],
                f"{row['active_seconds'] / 3600:.2f}", row["items"], _blank(row["gold_seen"]),
                _blank(row["gold_accuracy"]), row["hourly_rate"] or "",
                report["currency"] if row["hourly_rate"] else "", row["amount_due"] or "",
            ])
    return out.getvalue()


def _blank(value) -> object:
    return "" if value is None else value


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula in a spreadsheet; usernames may start with + - @.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- the ping -----------------------------------------------------------------------------------------------------


def activity_record(*, annotator: AbstractBaseUser, campaign_id: int, item_id: int | None, now: datetime | None = None
                    ) -> None:
    """Note that the annotator is active on the campaign's annotation page in this minute: one INSERT that does
    nothing when the minute is already noted (the page pings at most once a minute; a second tab changes nothing)."""
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    ActivityPing.objects.bulk_create(
        [ActivityPing(annotator_id=annotator.pk, campaign_id=campaign_id, minute=minute, item_id=item_id)],
        ignore_conflicts=True,
    )
