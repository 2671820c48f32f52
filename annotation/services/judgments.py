"""Submitting and revising judgments: rankings, and post-edits on post-editing campaigns (their body is checked by
annotation/services/post_edits.py; everything else here is shared).

Outcomes: a new judgment (201), a replay of an idempotency key already seen (200, nothing stored), or a revision
of the annotator's own judgment (200). The item row is locked first (PostgreSQL) so that two submits on one
item are serialised; SQLite's IMMEDIATE transactions serialise them anyway.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation import sql
from annotation.models import Campaign, Item, Judgment
from annotation.selectors import judgeable_item
from annotation.services.post_edits import MAX_EDIT_CHARS, post_edit_content, ranking_on_post_edit_refused
from annotation.services.quality import gold_judged
from crossfeed.errors import Conflict, InvalidInput, NotFound

IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_COMMENT_CHARS = 5000
MAX_SECONDS = 24 * 3600
# An error message quotes at most this much of a key or flag name the client sent, and names at most this many
# unknown flags: enough to recognise a typo, never an echo of a large body.
MAX_QUOTED_CHARS = 40
MAX_QUOTED_NAMES = 10
# The largest judgment body the API or the annotation page reads. A real one is a few hundred bytes; the bulk of
# the worst legal one is its comment: 5,000 characters, each up to 12 bytes as JSON (a surrogate pair "\ud83d\ude00")
# or as a form field (four UTF-8 bytes, percent-encoded) = 60 KB; ranks and flags for 8 responses add a few KB.
MAX_BODY_BYTES = 256 * 1024
# A post-edit carries the corrected text of each field it changes: up to 20,000 characters each (post_edits.py),
# 240 KB as JSON at 12 bytes a character, 120 KB as a form field of Arabic (6 bytes); the page sends every field.
# 4 MiB holds 16 such fields at the worst encoding and far more real ones. Only an item of a post-editing campaign
# gets this bound, looked up only for a body over MAX_BODY_BYTES (a ranking's submit reads nothing more).
MAX_POST_EDIT_BODY_BYTES = 4 * 1024 * 1024


class Outcome(enum.Enum):
    CREATED = "created"
    REPLAYED = "replayed"
    REVISED = "revised"


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    outcome: Outcome


def check_ranking(
    response_ids: list[int], ranks: Any, flags: Any, vocabulary: list[str]
) -> tuple[dict[str, int], dict[str, list[str]], dict[str, list[str]]]:
    """Validate ranks and flags against the item's responses; returns (ranks, flags, errors by field).

    Keys are response ids as strings (JSON object keys). Every response gets a rank from 1 to n; equal ranks are
    ties. Flags must come from the campaign's vocabulary.

    The work and the messages are bounded by the item, not by the request: an object with more keys than the item
    has responses is refused with one message before any key is looked at (a 31 MB body with 2.7 million keys once
    produced a 115 MB list of errors), and a sent key or flag name is quoted at most MAX_QUOTED_CHARS long.
    """
    errors: dict[str, list[str]] = {}
    known = {str(response_id) for response_id in response_ids}
    clean_ranks: dict[str, int] = {}
    if not isinstance(ranks, dict) or not ranks:
        errors["ranks"] = [_('expected an object {"<response id>": rank}, with a rank for every response')]
    elif len(ranks) > len(known):
        errors["ranks"] = [_too_many_keys(len(ranks), len(known))]
    else:
        for key, rank in ranks.items():
            if str(key) not in known:
                errors.setdefault("ranks", []).append(_not_a_response(key))
            elif isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= len(response_ids):
                errors.setdefault("ranks", []).append(
                    _("response %(response)s: rank must be a whole number from 1 to %(count)d")
                    % {"response": key, "count": len(response_ids)}
                )
            else:
                clean_ranks[str(key)] = rank
        missing = sorted(known - {str(key) for key in ranks}, key=int)
        if missing:
            errors.setdefault("ranks", []).append(_("no rank for response(s) %(responses)s")
                                                  % {"responses": ", ".join(missing)})
    clean_flags: dict[str, list[str]] = {}
    if flags not in (None, {}):
        if not isinstance(flags, dict):
            errors["flags"] = [_('expected an object {"<response id>": ["wrong_language", ...]}')]
        elif len(flags) > len(known):
            errors["flags"] = [_too_many_keys(len(flags), len(known))]
        else:
            for key, names in flags.items():
                if str(key) not in known:
                    errors.setdefault("flags", []).append(_not_a_response(key))
                elif not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                    errors.setdefault("flags", []).append(
                        _("response %(response)s: expected a list of flag names") % {"response": key})
                elif unknown := sorted(set(names) - set(vocabulary)):
                    shown = ", ".join(_quoted(name, quote=False) for name in unknown[:MAX_QUOTED_NAMES])
                    if len(unknown) > MAX_QUOTED_NAMES:
                        shown = _("%(names)s and %(count)d more") % {"names": shown,
                                                                     "count": len(unknown) - MAX_QUOTED_NAMES}
                    errors.setdefault("flags", []).append(
                        _("response %(response)s: unknown flag(s) %(names)s; allowed: %(allowed)s")
                        % {"response": key, "names": shown, "allowed": ", ".join(vocabulary)}
                    )
                elif names:
                    clean_flags[str(key)] = sorted(set(names))
    return clean_ranks, clean_flags, errors


def _too_many_keys(sent: int, responses: int) -> str:
    return (_("%(sent)d keys sent, but this item has %(responses)d responses: send one entry per response id, keyed "
              "by the ids that `next` returned") % {"sent": sent, "responses": responses})


def _not_a_response(key: Any) -> str:
    return _("%(key)s is not a response of this item") % {"key": _quoted(key)}


def _quoted(value: Any, *, quote: bool = True) -> str:
    text = str(value)
    if len(text) > MAX_QUOTED_CHARS:
        text = _("%(start)s… (%(length)d characters)") % {"start": text[:MAX_QUOTED_CHARS], "length": len(text)}
    return repr(text) if quote else text


def _check_extras(comment: Any, seconds_spent: Any, idempotency_key: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        errors["comment"] = [_("expected text of at most %(limit)d characters") % {"limit": MAX_COMMENT_CHARS}]
    elif "\x00" in comment:
        errors["comment"] = [_("contains a NUL character")]
    if seconds_spent is not None and (
        isinstance(seconds_spent, bool) or not isinstance(seconds_spent, int) or not 0 <= seconds_spent <= MAX_SECONDS
    ):
        errors["seconds_spent"] = [_("expected a whole number of seconds from 0 to %(limit)d")
                                   % {"limit": MAX_SECONDS}]
    if not _key_ok(idempotency_key):
        errors["idempotency_key"] = [_("required: 1–128 characters of letters, digits and _ . : - (e.g. a UUID)")]
    return errors


def _key_ok(idempotency_key: Any) -> bool:
    return isinstance(idempotency_key, str) and IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key) is not None


def judgment_check_size(*, body_bytes: int, item_id: int | None = None) -> None:
    """Refuse a judgment by its size alone, before a byte of it is parsed (MAX_BODY_BYTES says why this is ample;
    MAX_POST_EDIT_BODY_BYTES for an item of a post-editing campaign)."""
    if body_bytes <= MAX_BODY_BYTES:
        return
    if item_id is not None and Item.objects.filter(pk=item_id).values_list("campaign__task", flat=True).first() \
            == Campaign.Task.POST_EDIT:
        if body_bytes <= MAX_POST_EDIT_BODY_BYTES:
            return
        raise InvalidInput(_("the request body is %(size)d bytes; a post-edit is at most %(limit)d bytes (edits of at "
                             "most %(edit)d characters per field, a comment of at most %(comment)d)")
                           % {"size": body_bytes, "limit": MAX_POST_EDIT_BODY_BYTES, "edit": MAX_EDIT_CHARS,
                              "comment": MAX_COMMENT_CHARS}, field="body")
    if body_bytes > MAX_BODY_BYTES:
        raise InvalidInput(_("the request body is %(size)d bytes; a judgment is at most %(limit)d bytes (a comment of "
                             "at most %(comment)d characters, one rank per response)")
                           % {"size": body_bytes, "limit": MAX_BODY_BYTES, "comment": MAX_COMMENT_CHARS},
                           field="body")


@dataclass(frozen=True)
class JudgingContext:
    """What a submit reads before it writes (sql.judging_context) for one annotator, item and key: the earlier
    submission with the key, the item's row (sql.item_for_judging) and its response ids. The annotation page reads
    it first, to build its form, and hands it to judgment_submit, which would otherwise read it again."""

    annotator_id: int
    item_id: int
    key: str
    submitted: tuple[int, int] | None
    row: tuple | None
    response_ids: list[int]


def judging_context_read(*, annotator: AbstractBaseUser, item_id: int, idempotency_key: Any) -> JudgingContext:
    """One statement; a key that fails the checks looks nothing up (judgment_submit refuses it)."""
    key = idempotency_key if _key_ok(idempotency_key) else ""
    submitted, row, response_ids = sql.judging_context(item_id=item_id, annotator_id=annotator.pk, key=key)
    return JudgingContext(annotator.pk, item_id, key, submitted, row, response_ids)


def judgment_submit(
    *,
    annotator: AbstractBaseUser,
    item_id: int,
    ranks: Any = None,
    flags: Any = None,
    comment: Any = "",
    seconds_spent: Any = None,
    idempotency_key: Any,
    verdict: Any = None,
    edits: Any = None,
    context: JudgingContext | None = None,
) -> SubmitResult:
    """Validate outside the transaction, then store inside a short one.

    A ranking campaign's judgment has ranks (and flags); a post-editing campaign's has a verdict (and edits): each
    body sent to the other kind of campaign is refused with a message saying so.

    On SQLite a transaction holds the database's single write lock from BEGIN, so everything that only reads
    (the replay lookup, who may judge the item, the checks of the ranking) happens before it.
    """
    errors = _check_extras(comment if comment is not None else "", seconds_spent, idempotency_key)
    key_valid = "idempotency_key" not in errors
    # The replay lookup, the item and its response ids in one read: on PostgreSQL each statement is a round trip. A
    # context read by the caller is used only if it is this annotator's, item's and key's.
    if context is None or (context.annotator_id, context.item_id, context.key) != (
            annotator.pk, item_id, idempotency_key if key_valid else ""):
        context = judging_context_read(annotator=annotator, item_id=item_id, idempotency_key=idempotency_key)
    submitted, row, response_ids = context.submitted, context.row, context.response_ids
    if key_valid and (replay := _replayed(submitted, item_id)):
        return replay
    item = judgeable_item(annotator, row)
    if item is None:
        raise NotFound(_("no such item, or it is not one you can judge"))
    on_stored = None
    if item.campaign.is_post_edit:
        content, content_errors, on_stored = post_edit_content(item=item, ranks=ranks, flags=flags, verdict=verdict,
                                                               edits=edits)
    else:
        content_errors = ranking_on_post_edit_refused(verdict, edits)
        clean_ranks, clean_flags, rank_errors = check_ranking(
            response_ids, ranks, flags, list(item.campaign.flag_vocabulary)
        )
        content_errors = content_errors or rank_errors
        content = {"ranks": clean_ranks, "flags": clean_flags, "verdict": "", "edits": {}}
    errors.update(content_errors)
    if errors:
        raise _invalid(errors)
    if not item.campaign.accepts_judgments:
        raise Conflict(_("campaign %(name)r is %(status)s: judgments are not accepted now")
                       % {"name": item.campaign.name, "status": item.campaign.get_status_display()})
    fields = {**content, "comment": (comment or "").strip()}
    try:
        if on_stored is None and item.kind == Item.Kind.TASK and connection.features.has_select_for_update:
            created = _create_at_once(annotator, item, fields, seconds_spent, idempotency_key)
            if created is not None:
                return created
        with transaction.atomic():
            return _store(annotator, item, fields, seconds_spent, idempotency_key, on_stored)
    except IntegrityError:
        # Only a concurrent request with the same key (or for the same item) can get here: it won, so replay it.
        replay = _replay(annotator, idempotency_key, item_id)
        if replay is not None:
            return replay
        raise Conflict(_("another submission for this item arrived at the same moment; reload and try "
                         "again")) from None


def _replay(annotator, idempotency_key, item_id) -> SubmitResult | None:
    return _replayed(sql.submitted(annotator_id=annotator.pk, key=idempotency_key), item_id)


def _replayed(previous: tuple[int, int] | None, item_id: int) -> SubmitResult | None:
    """The earlier submission with this key (sql.submitted's (judgment id, item id)) replayed, if there was one."""
    if previous is None:
        return None
    if previous[1] != item_id:
        raise InvalidInput(_("this idempotency key was already used for another item"), field="idempotency_key")
    return SubmitResult(Judgment.objects.get(pk=previous[0]), Outcome.REPLAYED)


def _create_at_once(annotator, item: Item, fields: dict, seconds_spent, idempotency_key: str) -> SubmitResult | None:
    """PostgreSQL, a new judgment of a task item: sql.judgment_create alone, without a transaction around it (a
    statement is atomic on its own), so one round trip where BEGIN, the statement and COMMIT took three. None when
    the transaction below must decide: the annotator has judged the item (a revision), or another submit of theirs
    on it is being written at this moment (the IntegrityError; nothing was written)."""
    now = timezone.now()
    try:
        # Inside a caller's transaction a savepoint keeps the IntegrityError from aborting it.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            new_id, judged_before = sql.judgment_create(item_id=item.pk, annotator_id=annotator.pk,
                                                        key=idempotency_key, fields=fields,
                                                        seconds_spent=seconds_spent, now=now)
    except IntegrityError:
        return None
    if judged_before:
        return None
    if new_id is None:
        raise _item_filled()
    return SubmitResult(_new_judgment(new_id, item, annotator, fields, seconds_spent, now), Outcome.CREATED)


def _store(annotator, item: Item, fields: dict, seconds_spent, idempotency_key: str,
           on_stored: Callable[[int, Any], None] | None = None) -> SubmitResult:
    if connection.features.has_select_for_update:
        # PostgreSQL: submits on one item queue here, so the judgment check below sees the winner's row. (SQLite
        # needs no lock: its IMMEDIATE transaction already excludes every other writer.)
        sql.lock_item(item.pk)
    now = timezone.now()
    new_id = None
    if connection.features.has_select_for_update:
        # A new judgment, its place and its submission in one statement (one round trip instead of four).
        new_id, judged_before = sql.judgment_create(item_id=item.pk, annotator_id=annotator.pk, key=idempotency_key,
                                                    fields=fields, seconds_spent=seconds_spent, now=now)
        if new_id is None and not judged_before:
            raise _item_filled()
    if new_id is not None:
        judgment, outcome = _new_judgment(new_id, item, annotator, fields, seconds_spent, now), Outcome.CREATED
    else:
        existing = sql.judgment_id(item_id=item.pk, annotator_id=annotator.pk)
        if existing is not None:
            sql.revise_judgment(existing, fields=fields, seconds_spent=seconds_spent, now=now)
            judgment = Judgment.objects.get(pk=existing)
            outcome = Outcome.REVISED
        else:
            _take_place(item, annotator)
            judgment = _new_judgment(sql.insert_judgment(item_id=item.pk, annotator_id=annotator.pk, fields=fields,
                                                         seconds_spent=seconds_spent, now=now),
                                     item, annotator, fields, seconds_spent, now)
            outcome = Outcome.CREATED
        sql.insert_submission(judgment=judgment.pk, annotator_id=annotator.pk, key=idempotency_key, fields=fields,
                              now=now)
    if on_stored is not None:
        # A post-edit: the item's Translation takes this submission's text, in the same transaction (latest wins).
        on_stored(annotator.pk, now)
    if item.kind != Item.Kind.TASK:
        # A check of the annotator (gold, qualification): their record changes with the judgment, atomically.
        gold_judged(item=item, annotator_id=annotator.pk)
    return SubmitResult(judgment, outcome)


def _new_judgment(new_id: int, item: Item, annotator, fields: dict, seconds_spent, now) -> Judgment:
    return Judgment(id=new_id, item=item, annotator=annotator, seconds_spent=seconds_spent, revision=1,
                    created_at=now, updated_at=now, **fields)


def _take_place(item: Item, annotator) -> None:
    """Turn the annotator's lease into a judgment, or take a free place; 409 when the item filled up meanwhile."""
    held = sql.delete_lease(item_id=item.pk, annotator_id=annotator.pk)
    if not sql.take_judgment_place(item.pk, held_lease=bool(held)):
        raise _item_filled()


def _item_filled() -> Conflict:
    return Conflict(_(
        "this item received all the judgments it needed while you were working on it (your lease had "
        "expired); your ranking was not stored — please continue with the next item"
    ))


def _invalid(errors: dict[str, list[str]]) -> InvalidInput:
    # Field names stay as the API spells them; the messages are in the reader's language.
    summary = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
    return InvalidInput(summary, field_errors=errors)
