"""Post-editing by native speakers (issue 14, point 5): the weakest machine translations of a job become items of a
post-editing campaign; each accepted submission on such an item updates its Translation.

What is sent: every Translation of the job with a candidate (fields not empty) that scored under the job's
threshold or that no candidate was acceptable for (chosen False), plus a sample of `audit_rate` of the others, drawn
with `seed` so that the same call sends the same rows. Translations already sent to an earlier campaign are not sent
again.

An item per Translation: the source row is the prompt (in the set's language), each field a response in the target
language holding the machine's text (Alpaca: instruction, input when not empty, output; TRL messages: each
message), with the field's name and its source text in the response's metadata. Annotators native in the target
language who read the source language get the items (the ranking campaigns' routing, leases, skips, overlap and
revisions, unchanged).

A submission (annotation/services/post_edits.py checks it) writes the Translation in the same transaction: its
verdict, its fields with the edits applied (the machine's kept in `machine_fields`), the edit distance, who and
when. With an overlap over 1 the latest submission wins; each annotator's own stays in their judgment.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.models import Campaign, Item, JobStatus, Response, Verdict
from annotation.services.campaigns import MAX_OVERLAP, campaign_create
from crossfeed.errors import InvalidInput
from translation.edit_distance import fields_edit_distance, mean_edit_distance
from translation.models import Translation, TranslationJob
from translation.services.execution import row_fields

ITEM_ID_CHARS = 200  # Item.external_id's max_length
BATCH = 500


# --- which translations, as items -----------------------------------------------------------------------------


def post_edit_options_check(*, campaign_name: Any, overlap: Any = 1, audit_rate: Any = 0.0,
                            field: str = "") -> tuple[str, int, float]:
    """(name, overlap, audit_rate) checked; InvalidInput naming the field (`field` + "." + the key when given, as
    the translation job's post_edit object is named)."""
    def where(key: str) -> str:
        return f"{field}.{key}" if field else key

    if not isinstance(campaign_name, str) or not campaign_name.strip() or len(campaign_name) > 200:
        raise InvalidInput(_("the new campaign's name: 1 to 200 characters"), field=where("campaign_name"))
    if Campaign.objects.filter(name__iexact=campaign_name.strip()).exists():
        raise InvalidInput(_("a campaign named %(name)r already exists: choose another name")
                           % {"name": campaign_name.strip()}, field=where("campaign_name"))
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 1 <= overlap <= MAX_OVERLAP:
        raise InvalidInput(_("a whole number from 1 to %(limit)d: how many native speakers post-edit each "
                             "translation") % {"limit": MAX_OVERLAP}, field=where("overlap"))
    if isinstance(audit_rate, bool) or not isinstance(audit_rate, int | float) or not math.isfinite(audit_rate) \
            or not 0 <= audit_rate <= 1:
        raise InvalidInput(_("a number from 0 to 1: the share of the good translations also sent, for auditing"),
                           field=where("audit_rate"))
    return campaign_name.strip(), overlap, float(audit_rate)


def translations_to_post_edit(*, job: TranslationJob, audit_rate: float, seed: int) -> list[Translation]:
    """The job's translations to send, in (language, row) order: below the threshold or not acceptable, and a seeded
    sample of audit_rate of the others. Translations without a candidate, or already sent, are left out."""
    rows = Translation.objects.filter(job=job, post_edit="").select_related("row").defer(
        "candidates", "components", "flags", "machine_fields").order_by("language_id", "row__index")
    candidates = [translation for translation in rows.iterator(chunk_size=2000) if translation.fields]
    weak, good = [], []
    for translation in candidates:
        below = translation.quality is not None and translation.quality < job.quality_threshold
        (weak if below or not translation.chosen else good).append(translation)
    audited = random.Random(seed).sample(good, round(audit_rate * len(good))) if good and audit_rate else []  # noqa: S311 - a sample, not a secret
    chosen = {translation.pk for translation in weak + audited}
    return [translation for translation in candidates if translation.pk in chosen]


def _field_texts(translation: Translation) -> list[tuple[str, str, str, str]]:
    """(field name, source text, machine text, role) per field to post-edit, in the row's order (row_fields' names:
    instruction, input, output; m0, m1, ... for messages)."""
    row, fields = translation.row, translation.fields
    texts = []
    for name, source in row_fields(row).items():
        if name.startswith("m") and name[1:].isdigit():
            messages = fields.get("messages") or []
            index = int(name[1:])
            message = messages[index] if index < len(messages) else {}
            texts.append((name, source, message.get("content", ""), message.get("role", "")))
        else:
            texts.append((name, source, fields.get(name, ""), ""))
    return texts


def _external_id(translation: Translation) -> str:
    wanted = f"{translation.row.external_id}:{translation.language_id}"
    if len(wanted) <= ITEM_ID_CHARS:
        return wanted
    # A row id near its 300 characters: cut, with a hash of the whole, so that two long ids stay two items.
    digest = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    suffix = f"~{digest}:{translation.language_id}"
    return translation.row.external_id[:ITEM_ID_CHARS - len(suffix)] + suffix


@transaction.atomic
def post_edit_campaign_create(*, job: TranslationJob, campaign_name: str, overlap: int = 1, audit_rate: float = 0.0,
                              seed: int = 0, created_by=None) -> Campaign:
    """Make a post-editing campaign of the job's weak translations (and an audit sample of the others): all or
    nothing. InvalidInput (with its field) for a job that has not succeeded, a name taken, an overlap or rate out of
    range, or nothing to send."""
    job = TranslationJob.objects.select_related("instruction_set").get(pk=job.pk)
    if job.status != JobStatus.SUCCEEDED:
        raise InvalidInput(_("translation job %(job)d is %(status)s: only a succeeded job's translations can be "
                             "post-edited") % {"job": job.pk, "status": job.status}, field="job")
    name, overlap, audit_rate = post_edit_options_check(campaign_name=campaign_name, overlap=overlap,
                                                        audit_rate=audit_rate)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput(_("a whole number"), field="seed")
    translations = translations_to_post_edit(job=job, audit_rate=audit_rate, seed=seed)
    if not translations:
        raise InvalidInput(_("translation job %(job)d has no translation below its threshold (%(threshold)s) or "
                             "without an acceptable candidate that is not already being post-edited; to audit good "
                             "translations, give an audit_rate above 0")
                           % {"job": job.pk, "threshold": job.quality_threshold}, field="job")
    source_language = job.instruction_set.language_id
    # No guidelines of its own: the page explains the three verdicts in each annotator's interface language.
    campaign = campaign_create(name=name, created_by=created_by, overlap=overlap, status=Campaign.Status.ACTIVE,
                               task=Campaign.Task.POST_EDIT)
    now = timezone.now()
    texts = {translation.pk: _field_texts(translation) for translation in translations}
    items = []
    for translation in translations:
        prompt = "\n\n".join(source for _name, source, _machine, _role in texts[translation.pk])
        content = [prompt, [[name, source, machine, role] for name, source, machine, role in texts[translation.pk]]]
        items.append(Item(
            campaign=campaign, external_id=_external_id(translation), prompt_text=prompt,
            prompt_language_id=source_language, response_language_id=translation.language_id,
            metadata={"translation": translation.pk, "job": job.pk, "quality": translation.quality},
            content_hash=hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest(),
            target=overlap, created_at=now))
    # In batches, ids returned (SQLite 3.35+, PostgreSQL): a job's thousands of weak translations are a few
    # statements, not one per row, inside this all-or-nothing transaction.
    Item.objects.bulk_create(items, batch_size=BATCH)
    Response.objects.bulk_create([
        Response(item=item, position=position, text=machine, language_id=translation.language_id,
                 model_name=translation.translator_label,
                 metadata={"field": name, "source": source, **({"role": role} if role else {})})
        for translation, item in zip(translations, items, strict=True)
        for position, (name, source, machine, role) in enumerate(texts[translation.pk])], batch_size=BATCH)
    _mark_pending([(item.pk, translation.pk) for translation, item in zip(translations, items, strict=True)])
    TranslationJob.objects.filter(pk=job.pk).update(post_edit_campaign=campaign)
    return campaign


def _mark_pending(links: list[tuple[int, int]]) -> None:
    """post_edit "pending" and the item, per (item id, translation id). One prepared UPDATE run for every pair:
    Django's bulk_update builds a CASE per batch, and took half the campaign's making (7.7 s for 6,000 items)."""
    table = connection.ops.quote_name(Translation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET post_edit = %s, post_edit_item_id = %s WHERE id = %s",  # noqa: S608
                           [(Translation.PostEdit.PENDING.value, item, translation) for item, translation in links])


# --- a submission, applied -------------------------------------------------------------------------------------


def _apply(fields: dict, edits_by_field: dict[str, str]) -> dict:
    """The translation's fields with the edited texts in place (m<i>: the content of message i)."""
    applied = json.loads(json.dumps(fields))
    for name, text in edits_by_field.items():
        if name.startswith("m") and name[1:].isdigit():
            applied.setdefault("messages", [])[int(name[1:])]["content"] = text
        else:
            applied[name] = text
    return applied


def _texts(fields: dict) -> list[str]:
    if "messages" in fields:
        return [message.get("content", "") for message in fields.get("messages") or []]
    return [fields.get(name, "") for name in ("instruction", "input", "output")]


def post_edit_prepare(*, item_id: int, verdict: str, edits: dict[str, str]) -> Callable[[int, Any], None] | None:
    """What a post-edit submission does to the item's Translation, worked out now (outside the write transaction):
    a callable (annotator id, time) that writes it, or None when no Translation is linked to the item.

    The machine's fields do not change once made, so reading them here and writing later is safe; only who wrote
    last differs, and the last writer wins."""
    translation = Translation.objects.filter(post_edit_item_id=item_id).only("id", "fields", "machine_fields").first()
    if translation is None:
        return None
    machine = translation.machine_fields or translation.fields
    by_field = dict(Response.objects.filter(item_id=item_id).values_list("id", "metadata__field"))
    edited = {by_field[int(key)]: text for key, text in edits.items() if by_field.get(int(key))}
    fields = _apply(machine, edited) if verdict == Verdict.EDITED else machine
    distance = fields_edit_distance(_texts(machine), _texts(fields)) if verdict != Verdict.UNUSABLE else None
    changes = {"post_edit": verdict, "fields": fields, "edit_distance": distance}
    if verdict == Verdict.EDITED:
        changes["machine_fields"] = machine

    def record(annotator_id: int, now: Any) -> None:
        Translation.objects.filter(pk=translation.pk).update(post_edited_by_id=annotator_id, post_edited_at=now,
                                                             **changes)

    return record


# --- the report ---------------------------------------------------------------------------------------------------


def post_edit_report(job: TranslationJob) -> dict[str, dict[str, Any]]:
    """Per language, counted now from the Translation rows: {pending, accepted, edited, unusable,
    mean_edit_distance} (the mean over accepted and edited ones, accepted counting 0.0)."""
    verdicts = [Translation.PostEdit.PENDING, Translation.PostEdit.ACCEPTED, Translation.PostEdit.EDITED,
                Translation.PostEdit.UNUSABLE]
    counts = {code: {verdict.value: 0 for verdict in verdicts} for code in job.languages}
    for code, verdict, n in Translation.objects.filter(job=job, post_edit__in=verdicts).values_list(
            "language_id", "post_edit").annotate(n=Count("id")).order_by():
        counts.setdefault(code, {verdict.value: 0 for verdict in verdicts})[verdict] = n
    distances: dict[str, list[float]] = {}
    for code, distance in Translation.objects.filter(job=job, edit_distance__isnull=False).filter(
            Q(post_edit=Translation.PostEdit.ACCEPTED) | Q(post_edit=Translation.PostEdit.EDITED)).values_list(
            "language_id", "edit_distance"):
        distances.setdefault(code, []).append(distance)
    return {code: {**counted, "mean_edit_distance": mean_edit_distance(distances.get(code, []))}
            for code, counted in counts.items()}
