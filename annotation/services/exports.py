"""Preference and SFT exports: create (validate, queue on commit), run (stream, derive, write, publish), retry,
and the marking of exports whose worker died.

The run reads the campaign in chunks of items by ascending id (keyset pagination), three queries per chunk, so
memory is bounded by the chunk size whatever the campaign's size, and no transaction (and on SQLite no lock) is
held while it works. Consistency comes from `Export.cutoff`: only judgments created before it count, and a
judgment revised after it is read as it stood then (from its submission history).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.export.adjudicated import adjudicated_pairs, pair_weight
from annotation.export.agreement import AlphaAccumulator
from annotation.export.card import dataset_card
from annotation.export.pairs import PAIR_MODES, ItemJudgment, derive_pairs
from annotation.export.rows import ExportItem, preference_rows, sft_row, split_key, split_of
from annotation.export.writers import DatasetWriter
from annotation.languages import normalize_language_code
from annotation.models import Adjudication, Campaign, Export, Item, JobStatus, Judgment, JudgmentSubmission, Response
from annotation.services.quality import ExclusionRules
from crossfeed.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)
CHUNK_ITEMS = 5000
STALE_AFTER = timedelta(minutes=5)


def exports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_folder(export: Export) -> Path:
    return exports_root() / str(export.pk)


def _check_filters(filters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    clean = dict(filters)
    if filters["kind"] not in Export.Kind.values:
        errors["kind"] = [_("one of %(choices)s") % {"choices": ", ".join(Export.Kind.values)}]
    if filters["format"] not in Export.Format.values:
        errors["format"] = [_("one of %(choices)s") % {"choices": ", ".join(Export.Format.values)}]
    if filters["pairs"] not in PAIR_MODES:
        errors["pairs"] = [_("one of %(choices)s") % {"choices": ", ".join(PAIR_MODES)}]
    value = filters["min_judgments"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        errors["min_judgments"] = [_("a whole number from 1 to %(limit)d") % {"limit": 20}]
    value = filters["min_agreement"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        errors["min_agreement"] = [_("a number from 0 to 1 (the least vote margin of a pair)")]
    value = filters["test_fraction"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        errors["test_fraction"] = [_("a number from 0 (no test split) to below 1")]
    value = filters["seed"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        errors["seed"] = [_("a whole number from 0 to %(limit)d") % {"limit": 2**31 - 1}]
    if not isinstance(filters.get("weights", False), bool):
        errors["weights"] = [_("true or false")]
    elif filters.get("weights") and filters["kind"] == Export.Kind.SFT:
        errors["weights"] = [_("weights are per preference pair: ask for them with kind preference")]
    languages = filters["languages"] or []
    if not isinstance(languages, list) or not all(isinstance(code, str) for code in languages):
        errors["languages"] = [_("a list of response language codes")]
    else:
        unknown = [code for code in languages if normalize_language_code(code) is None]
        if unknown:
            errors["languages"] = [_("unknown language(s): %(codes)s")
                                   % {"codes": ", ".join(code[:40] for code in unknown)}]
        clean["languages"] = sorted({normalize_language_code(code) for code in languages} - {None})
    return clean, errors


def _matching_items(campaign: Campaign, *, languages: list[str], min_judgments: int):
    # Gold and qualification items are checks of the annotators: never training data.
    items = Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK, judgment_count__gte=min_judgments)
    return items.filter(response_language__in=languages) if languages else items


@transaction.atomic
def export_create(
    *,
    campaign: Campaign,
    created_by,
    kind: str = Export.Kind.PREFERENCE,
    format: str = Export.Format.JSONL,  # noqa: A002 - the API's field name
    pairs: str = Export.Pairs.ALL,
    min_judgments: int = 2,
    min_agreement: float = 0.0,
    languages: list[str] | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    weights: bool = False,
    enqueue: bool = True,
) -> Export:
    """Record an export and queue it once the transaction commits. Filters matching nothing are refused.
    `weights`: add a `weight` column from the annotators' reliability (preference exports; docs/export.md)."""
    if campaign.task == Campaign.Task.POST_EDIT:
        raise InvalidInput(_("a post-editing campaign has no rankings; its edits go into the instruction set's SFT "
                             "export (POST /api/v1/instruction-sets/{id}/exports/)"), field="campaign")
    filters, errors = _check_filters({
        "kind": kind, "format": format, "pairs": pairs, "min_judgments": min_judgments,
        "min_agreement": min_agreement, "languages": languages, "test_fraction": test_fraction, "seed": seed,
        "weights": weights,
    })
    if errors:
        raise InvalidInput(_("invalid export settings"), field_errors=errors)
    matched = _matching_items(campaign, languages=filters["languages"], min_judgments=filters["min_judgments"])
    if not matched.exists():
        values = {"name": campaign.name, "count": filters["min_judgments"],
                  "languages": ", ".join(filters["languages"])}
        raise InvalidInput(
            (_("no item of campaign %(name)r with response language %(languages)s has %(count)d or more judgments "
               "yet; lower min_judgments or wait for more judgments") if filters["languages"] else
             _("no item of campaign %(name)r has %(count)d or more judgments yet; lower min_judgments or wait for "
               "more judgments")) % values,
            field="min_judgments",
        )
    export = Export.objects.create(
        campaign=campaign, created_by=created_by if created_by and created_by.is_authenticated else None,
        progress_total=matched.count(), **filters,
    )
    if enqueue:
        export_enqueue(export)
    return export


def export_enqueue(export: Export) -> None:
    from annotation.tasks import run_export

    # After commit: a worker must never pick up an export whose row it cannot see yet.
    transaction.on_commit(lambda: run_export.enqueue(export.pk))


@transaction.atomic
def export_retry(*, export: Export) -> Export:
    """Queue a failed or cancelled export again; nothing of it was published, so it starts from scratch."""
    updated = Export.objects.filter(pk=export.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED, error="", progress_done=0, finished_at=None
    )
    if not updated:
        raise Conflict(_("export %(export)d is %(status)s: only failed or cancelled exports can be retried")
                       % {"export": export.pk, "status": export.get_status_display()})
    export.refresh_from_db()
    export_enqueue(export)
    return export


def exports_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Mark running exports whose worker stopped sending heartbeats as failed; returns how many."""
    now = now or timezone.now()
    stale = list(Export.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after))
    for export in stale:
        reason = (f"the worker stopped responding (no heartbeat since {export.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); "
                  "nothing was published — retry the export")
        Export.objects.filter(pk=export.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=reason, finished_at=now
        )
        _remove_partials(export)
    return len(stale)


def export_run(*, export_id: int, progress: Callable[[int, int], None] | None = None) -> Export:
    """Run a queued export to the end. Claims it first, so two workers never run the same export."""
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    export = Export.objects.select_related("campaign").get(pk=export_id)
    if not claimed:
        logger.info("export %s is %s, not queued: not running it", export_id, export.status)
        return export
    _remove_partials(export)
    partial = exports_root() / f".{export.pk}.partial-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    try:
        summary = _build(export, partial, progress)
        final = export_folder(export)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)  # publishing is one rename: readers see all the files or none
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        message = exc.message if isinstance(exc, InvalidInput) else f"{type(exc).__name__}: {exc}"
        logger.exception("export %s failed", export.pk)
        Export.objects.filter(pk=export.pk).update(status=JobStatus.FAILED, error=message,
                                                   finished_at=timezone.now())
    else:
        Export.objects.filter(pk=export.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now(),
                                                   error="", **summary)
    export.refresh_from_db()
    return export


def _remove_partials(export: Export) -> None:
    for leftover in exports_root().glob(f".{export.pk}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _build(export: Export, folder: Path, progress) -> dict[str, Any]:
    # Weights need every annotator's reliability in each language pair before the first row: one pass more.
    reliability = _reliability(export) if export.weights else None
    rules = ExclusionRules(export.campaign_id)
    writer = DatasetWriter(folder, file_format=export.format, kind=export.kind, weights=export.weights)
    stats: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"items": 0, "rows": 0, "train": 0, "test": 0, "alpha": AlphaAccumulator()}
    )
    done = adjudicated = 0
    try:
        for chunk in _export_items(export, rules):
            for item in chunk:
                split = split_of(split_key(item), test_fraction=export.test_fraction, seed=export.seed)
                rows = _rows_of(export, item, split, reliability)
                adjudicated += bool(rows) and item.final_ranks is not None
                if not rows:
                    continue
                writer.write(split, rows)
                pair = stats[(item.prompt_language, item.response_language)]
                pair["items"] += 1
                pair["rows"] += len(rows)
                pair[split] += len(rows)
                pair["alpha"].add(item.judgments)
            done += len(chunk)
            _heartbeat(export, done, progress)
    finally:
        files = writer.close()
    if not files:
        raise InvalidInput(
            f"the filters matched {export.progress_total} item(s) but gave no rows: no pair had a majority meeting "
            f"min_agreement={export.min_agreement}, or every best response was flagged wrong_language"
            + (f"; {sum(rule['judgments'] for rule in rules.summary())} judgment(s) were left out by exclusions"
               if rules.dropped else "")
        )
    return _summary(export, folder, files, stats, quality={"exclusions": rules.summary(), "adjudicated": adjudicated})


def _rows_of(export: Export, item: ExportItem, split: str,
             reliability: dict[tuple[str, str], dict[int, float]] | None = None) -> list[dict]:
    if export.kind == Export.Kind.SFT:
        row = sft_row(item, split, min_judgments=export.min_judgments)
        return [row] if row else []
    if len(item.judgments) < export.min_judgments:
        return []  # what exclusions left of an item must still meet min_judgments, adjudicated or not
    if item.final_ranks is not None:
        preferences = adjudicated_pairs(sorted(item.responses), item.final_ranks, item.wrong_language,
                                        item.judgments, mode=export.pairs)
    else:
        preferences = derive_pairs(sorted(item.responses), item.judgments, mode=export.pairs,
                                   min_judgments=export.min_judgments, min_agreement=export.min_agreement)
    rows = preference_rows(item, preferences, split)
    if reliability is not None:
        scores = reliability.get((item.prompt_language, item.response_language), {})
        for row, preference in zip(rows, preferences, strict=True):
            row["weight"] = 1.0 if item.final_ranks is not None else pair_weight(
                preference.chosen, preference.rejected, item.judgments, scores)
    return rows


def _reliability(export: Export) -> dict[tuple[str, str], dict[int, float]]:
    """Each annotator's reliability per language pair over the judgments this export takes (annotation/competence.py:
    one-coin Dawid-Skene on their pairwise choices)."""
    from annotation.competence import PairwiseLabels

    labels: dict[tuple[str, str], PairwiseLabels] = defaultdict(PairwiseLabels)
    for chunk in _export_items(export, ExclusionRules(export.campaign_id)):
        for item in chunk:
            labels[(item.prompt_language, item.response_language)].add(item.judgments)
    return {pair: accumulated.skills() for pair, accumulated in labels.items()}


def _heartbeat(export: Export, done: int, progress) -> None:
    Export.objects.filter(pk=export.pk).update(progress_done=done, heartbeat_at=timezone.now())
    if progress:
        progress(done, export.progress_total)


def _summary(export: Export, folder: Path, files: list[dict], stats: dict, quality: dict) -> dict[str, Any]:
    campaign_alpha = AlphaAccumulator()
    language_pairs, per_language = [], {}
    for (prompt_language, response_language), pair in sorted(stats.items()):
        campaign_alpha.merge(pair["alpha"])
        counts = {key: pair[key] for key in ("items", "rows", "train", "test")}
        language_pairs.append({"prompt_language": prompt_language, "response_language": response_language,
                               **counts, "agreement": pair["alpha"].alpha()})
        language = per_language.setdefault(response_language, {"items": 0, "rows": 0, "train": 0, "test": 0})
        for key, value in counts.items():
            language[key] += value
    agreement = campaign_alpha.alpha()
    filters = {"pairs": export.pairs, "min_judgments": export.min_judgments, "min_agreement": export.min_agreement,
               "languages": export.languages, "test_fraction": export.test_fraction, "seed": export.seed}
    card = dataset_card(campaign=export.campaign.name, kind=export.kind, file_format=export.format, filters=filters,
                        files=files, language_pairs=language_pairs, agreement=agreement,
                        quality={**quality, "weights": export.weights})
    (folder / "README.md").write_text(card, encoding="utf-8")
    return {
        "rows": sum(f["rows"] for f in files),
        "files": files,
        "language_pairs": language_pairs,
        "per_language": per_language,
        "agreement": {"alpha": agreement},
        "progress_done": export.progress_total,
        **quality,
    }


def _export_items(export: Export, rules: ExclusionRules) -> Iterator[list[ExportItem]]:
    items = _matching_items(export.campaign, languages=export.languages, min_judgments=export.min_judgments)
    after = 0
    while True:
        rows = list(
            items.filter(id__gt=after).order_by("id").values_list(
                "id", "external_id", "prompt_text", "prompt_language_id", "pivot_text", "response_language_id"
            )[:CHUNK_ITEMS]
        )
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        # A range of ids, so that the index on item_id is scanned in order; the campaign filter keeps out the rows
        # of other campaigns' items whose ids fall inside the range (campaigns imported at the same time).
        responses = _responses_between(export.campaign_id, first, last)
        pairs = {row[0]: (row[3], row[5]) for row in rows}
        judgments = _judgments_between(export.campaign_id, first, last, export.cutoff, keep=_kept_by(rules, pairs))
        final = _adjudications_between(export.campaign_id, first, last, export.cutoff)
        yield [
            ExportItem(external_id, prompt_text, prompt_language, pivot_text, response_language,
                       responses.get(item_id, {}), judgments.get(item_id, []),
                       *final.get(item_id, (None, ())))
            for item_id, external_id, prompt_text, prompt_language, pivot_text, response_language in rows
            if item_id in judgments
        ]
        after = last


def _responses_between(campaign_id: int, first: int, last: int) -> dict[int, dict[int, tuple[str, str]]]:
    found: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
    rows = Response.objects.filter(item_id__gte=first, item_id__lte=last, item__campaign_id=campaign_id).values_list(
        "item_id", "id", "text", "model_name"
    )
    for item_id, response_id, text, model in rows:
        found[item_id][response_id] = (text, model)
    return found


def _kept_by(rules: ExclusionRules, pairs: dict[int, tuple[str, str]]):
    """Judgments of the chunk's exported items that no exclusion takes out."""

    def keep(item_id: int, annotator_id: int, created_at: datetime) -> bool:
        return item_id in pairs and not rules.drops(annotator_id, pairs[item_id], created_at)

    return keep


def _adjudications_between(campaign_id: int, first: int, last: int,
                           cutoff: datetime) -> dict[int, tuple[dict[int, int], tuple[int, ...]]]:
    """Reviewers' final rankings of the items in the id range, as they stood at the cutoff (one made after it is
    not part of the snapshot; one revised after it counts as first made: adjudications keep no history)."""
    rows = Adjudication.objects.filter(item_id__gte=first, item_id__lte=last, item__campaign_id=campaign_id,
                                       created_at__lte=cutoff).values_list("item_id", "ranks", "wrong_language")
    return {item_id: ({int(key): rank for key, rank in ranks.items()}, tuple(wrong or ()))
            for item_id, ranks, wrong in rows}


def _judgments_between(campaign_id: int, first: int, last: int, cutoff: datetime,
                       keep=None) -> dict[int, list[ItemJudgment]]:
    """`keep(item_id, annotator_id, created_at)`: False leaves the judgment out (ExclusionRules)."""
    rows = (
        Judgment.objects.filter(item_id__gte=first, item_id__lte=last, item__campaign_id=campaign_id,
                                created_at__lte=cutoff)
        .order_by("item_id", "annotator_id")
        .values_list("id", "item_id", "annotator_id", "ranks", "flags", "updated_at", "created_at")
    )
    found: dict[int, list[ItemJudgment]] = defaultdict(list)
    revised: dict[int, tuple[int, int]] = {}
    for judgment_id, item_id, annotator_id, ranks, flags, updated_at, created_at in rows:
        if keep is not None and not keep(item_id, annotator_id, created_at):
            continue
        if updated_at > cutoff:
            revised[judgment_id] = (item_id, annotator_id)
            continue
        found[item_id].append(ItemJudgment.from_stored(annotator_id, ranks, flags))
    for judgment_id, ranks, flags in _as_of(revised, cutoff):
        item_id, annotator_id = revised[judgment_id]
        found[item_id].append(ItemJudgment.from_stored(annotator_id, ranks, flags))
        found[item_id].sort(key=lambda judgment: judgment.annotator_id)
    return found


def _as_of(revised: dict[int, tuple[int, int]], cutoff: datetime) -> Iterator[tuple[int, dict, dict]]:
    """For judgments revised after the cutoff: their last submission at or before it."""
    if not revised:
        return
    latest: dict[int, tuple[dict, dict]] = {}
    submissions = (
        JudgmentSubmission.objects.filter(judgment_id__in=list(revised), created_at__lte=cutoff)
        .order_by("judgment_id", "created_at", "id")
        .values_list("judgment_id", "ranks", "flags")
    )
    for judgment_id, ranks, flags in submissions:
        latest[judgment_id] = (ranks, flags)
    for judgment_id, (ranks, flags) in latest.items():
        yield judgment_id, ranks, flags


