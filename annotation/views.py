"""Annotator pages (server-rendered, htmx). The workspace is one partial, `_item.html`, that the page loads with a
POST and that every submit or skip replaces; no GET changes state."""

from __future__ import annotations

import time
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import ExpressionWrapper, F, IntegerField, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotation import competence, language_hint, selectors, sql
from annotation.forms import DisagreementFilterForm, JudgmentForm, PostEditForm
from annotation.models import Adjudication, Campaign, Item, Judgment, Skip
from annotation.serializers import item_payload, post_edit_payload
from annotation.services.assignment import item_skip, lease_next, skip_undo
from annotation.services.guidelines import guidelines_for
from annotation.services.judgments import JudgingContext, judging_context_read, judgment_check_size, judgment_submit
from annotation.services.quality import adjudication_record, may_adjudicate
from annotation.templatetags.crossfeed import letter
from crossfeed.bodies import declared_length
from crossfeed.errors import Conflict, CrossfeedError, InvalidInput, NotFound
from crossfeed.permissions import user_may


def _get_campaign_for_user(request: HttpRequest, campaign_id: int) -> Campaign:
    return get_object_or_404(selectors.campaigns_visible_to(request.user), pk=campaign_id)


def _get_item_for_annotator(request: HttpRequest, item_id: int) -> Item:
    item = selectors.item_for_annotator(request.user, item_id)
    if item is None:
        raise Http404(_("No such item, or it is not one you can see."))
    return item


def _require_annotator(request: HttpRequest) -> None:
    # Staff see every item, so without this check an admin's POST would take one of an item's k places.
    if not selectors.is_annotator(request.user):
        raise PermissionDenied(_("Only annotators rank or skip items; your account has no annotator profile."))


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = []
    annotator = selectors.is_annotator(request.user)
    for campaign in selectors.campaigns_visible_to(request.user):
        row = {"campaign": campaign, "progress": selectors.campaign_progress(campaign)}
        if annotator:
            row["mine"] = selectors.annotator_progress(request.user, campaign)
        campaigns.append(row)
    return render(request, "annotation/home.html", {"campaigns": campaigns, "is_annotator": annotator})


@require_GET
@login_required
def annotate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _get_campaign_for_user(request, campaign_id)
    if not selectors.is_annotator(request.user):
        messages.info(request, _("Your account has no annotator profile: you can read campaigns but not rank."))
        return redirect("home")
    # The guidelines in each of the annotator's native languages (the languages of the responses they rank).
    guidelines = guidelines_for(campaign=campaign, languages=selectors.annotator_languages(request.user)[0])
    return render(request, "annotation/annotate.html", {
        "campaign": campaign, "guidelines": guidelines,
        # Warnings and exclusions from gold items, qualification results (docs/campaigns.md).
        "standing": competence.standing_states_of(campaign=campaign, annotator=request.user),
    })


@require_POST
@login_required
def next_item(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _get_campaign_for_user(request, campaign_id)
    return _render_next(request, campaign)


def _render_workspace(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    """htmx gets the partial; a browser without JavaScript gets the same partial inside the full page."""
    if request.htmx:
        return render(request, template, context, status=status)
    return render(request, "annotation/workspace_page.html", {**context, "partial": template}, status=status)


def _render_next(request: HttpRequest, campaign: Campaign, *, notice: str = "", status: int = 200) -> HttpResponse:
    context = {"campaign": campaign, "notice": notice}
    try:
        lease = lease_next(campaign=campaign, annotator=request.user)
    except CrossfeedError as exc:
        context["error"] = exc.message
        return _render_workspace(request, "annotation/_done.html", context, status)
    context["mine"], context["progress"] = progress_of(request.user, campaign)
    if lease is None:
        return _render_workspace(request, "annotation/_done.html", context, status)
    item, responses = _item_to_show(request.user, lease.item_id, campaign)
    context.update(_item_context(request, item, lease.expires_at, responses=responses))
    return _render_workspace(request, "annotation/_item.html", context, status)


def _item_to_show(user, item_id: int, campaign: Campaign) -> tuple[Item, list | None]:
    """The leased item for _item.html, and its responses: two primary-key reads without the ORM's query building,
    as the API's next does (selectors.item_and_responses; the ORM's prefetch cost a millisecond per item)."""
    item = selectors.item_judgeable_by(user, item_id)
    if item is None:  # a leased item is always the annotator's to judge; were it not, it is read as it was before
        return selectors.item_with_responses(item_id), None
    row, responses = selectors.item_and_responses(item_id)
    item.campaign, item.prompt_text, item.pivot_text = campaign, row.prompt_text, row.pivot_text
    return item, responses


def _item_context(request: HttpRequest, item: Item, lease_expires_at, *, judgment: Judgment | None = None,
                  errors: dict | None = None, posted: dict | None = None, responses: list | None = None) -> dict:
    if item.campaign.is_post_edit:
        return _post_edit_context(item, lease_expires_at, judgment=judgment, errors=errors, posted=posted)
    payload = item_payload(item, request.user.id, None, responses)
    ranks = dict((judgment.ranks if judgment else {}) | (posted or {}).get("ranks", {}))
    flags = (posted or {}).get("flags") or (judgment.flags if judgment else {})
    first_judgment = judgment is None and posted is None
    errors = dict(errors or {})
    rank_errors = []
    for index, response in enumerate(payload["responses"]):
        response["rank"] = ranks.get(str(response["id"]))
        # The "Detected: …" hint, and on a first judgment its wrong-language flag ticked to confirm or clear.
        response["hinted"] = language_hint.detected_differs(response["language"], response["detected_language"])
        response["flags"] = language_hint.flags_to_show(
            saved=None if first_judgment else flags.get(str(response["id"]), []), hinted=response["hinted"],
            flag_vocabulary=item.campaign.flag_vocabulary)
        # A rank error goes into its response's card, and the summary names the response by the letter the
        # annotator sees (the ids are internal, and each annotator sees the responses in their own order).
        response["errors"] = [str(problem) for problem in errors.pop(f"rank_{response['id']}", [])]
        rank_errors += [{"response": response["id"], "message": _("Response %(letter)s: %(problem)s") % {
            "letter": letter(index), "problem": problem}} for problem in response["errors"]]
    return {
        "item": item,
        "payload": payload,
        "choices": range(1, len(payload["responses"]) + 1),
        "flag_vocabulary": item.campaign.flag_vocabulary,
        "lease_expires_at": lease_expires_at,
        "judgment": judgment,
        "errors": errors,
        "rank_errors": rank_errors,
        "comment": (posted or {}).get("comment", judgment.comment if judgment else ""),
        "idempotency_key": uuid.uuid4().hex,
        "rendered_at": int(time.time()),
    }


def field_label(field: str, role: str = "") -> str:
    """A post-editing response's field, as the annotator reads it."""
    if field.startswith("m") and field[1:].isdigit():
        if role:
            return _("Message %(number)d (%(role)s)") % {"number": int(field[1:]) + 1, "role": role}
        return _("Message %(number)d") % {"number": int(field[1:]) + 1}
    return str(FIELD_LABELS.get(field, field))


FIELD_LABELS = {"instruction": gettext_lazy("Instruction"), "input": gettext_lazy("Input"),
                "output": gettext_lazy("Output")}


def _post_edit_context(item: Item, lease_expires_at, *, judgment: Judgment | None = None, errors: dict | None = None,
                       posted: dict | None = None) -> dict:
    """A post-editing item: per field its source and a textarea holding, in this order, what the annotator just sent
    (after a refusal), their saved edit (when revising), or the machine translation."""
    payload = post_edit_payload(item, None)
    errors = dict(errors or {})
    saved = judgment.edits if judgment else {}
    sent = (posted or {}).get("edits", {})
    field_errors = []
    for response in payload["responses"]:
        key = str(response["id"])
        response["label"] = field_label(response["field"], response.get("role", ""))
        response["value"] = sent.get(key, saved.get(key, response["text"]))
        response["errors"] = [str(problem) for problem in errors.pop(f"edit_{key}", [])]
        field_errors += [{"response": response["id"], "message": _("%(field)s: %(problem)s") % {
            "field": response["label"], "problem": problem}} for problem in response["errors"]]
    return {
        "item": item,
        "payload": payload,
        "post_edit": True,
        "lease_expires_at": lease_expires_at,
        "judgment": judgment,
        "errors": errors,
        "rank_errors": field_errors,
        "comment": (posted or {}).get("comment", judgment.comment if judgment else ""),
        "idempotency_key": uuid.uuid4().hex,
        "rendered_at": int(time.time()),
    }


@require_POST
@login_required
def submit(request: HttpRequest, item_id: int) -> HttpResponse:
    _require_annotator(request)
    try:
        judgment_check_size(body_bytes=declared_length(request), item_id=item_id)
    except InvalidInput as exc:
        # Django has parsed the form already (CSRF reads it, within DATA_UPLOAD_MAX_MEMORY_SIZE and
        # DATA_UPLOAD_MAX_NUMBER_FIELDS); refusing here keeps an oversized comment from being echoed into the page.
        return HttpResponseBadRequest(
            _("This submission is too large: %(reason)s. Shorten it and send it again.") % {"reason": exc.message},
            content_type="text/plain; charset=utf-8",
        )
    item, campaign, context = _item_to_judge(request, item_id)
    post_edit = item.campaign.is_post_edit
    form_class = PostEditForm if post_edit else JudgmentForm
    form = form_class(request.POST, response_ids=context.response_ids)
    posted = form.posted()
    try:
        if not form.is_valid():
            errors = form.field_errors() if post_edit else form.field_errors(per_response=True)
            raise InvalidInput(_("Please fix the marked fields."), field_errors=errors)
        judgment_submit(annotator=request.user, item_id=item.id, context=context, **form.service_arguments())
    except InvalidInput as exc:
        return _render_refused(request, _get_item_for_annotator(request, item.id),
                               errors=exc.field_errors or {"__all__": [exc.message]}, posted=posted)
    except Conflict as exc:
        return _render_next(request, campaign, notice=exc.message)
    except NotFound as exc:
        raise Http404(exc.message) from None
    if request.POST.get("return") == "mine":
        messages.success(request, _("Revision saved."))
        target = reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
        return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    return _render_next(request, campaign, notice=_("Saved. Here is the next item."))


def _item_to_judge(request: HttpRequest, item_id: int) -> tuple[Item, Campaign, JudgingContext]:
    """The item of a submit, with only the fields judging needs, its campaign with those the next item needs, and
    what the submit reads before it writes (the earlier submission with the posted key, the item, its response ids):
    two reads, as the API's submit and next make, the second handed to judgment_submit (the ORM's visibility query
    cost 2 ms per submit; reading the item and its responses apart, two statements more)."""
    context = judging_context_read(annotator=request.user, item_id=item_id,
                                   idempotency_key=request.POST.get("idempotency_key", ""))
    item = selectors.judgeable_item(request.user, context.row)
    if item is None:  # 404, or an item a staff annotator may read outside their languages (the service refuses it)
        item = _get_item_for_annotator(request, item_id)
        return item, item.campaign, context
    campaign = selectors.campaign_for_leasing(request.user, item.campaign_id)
    campaign.flag_vocabulary = item.campaign.flag_vocabulary
    return item, campaign, context


def _render_refused(request: HttpRequest, item: Item, **context) -> HttpResponse:
    """The same item again with what was sent and what was wrong (422); the lease is kept."""
    campaign = item.campaign
    lease = selectors.live_lease(request.user, item)
    page = {"campaign": campaign}
    page["mine"], page["progress"] = progress_of(request.user, campaign)
    skip_error = context.pop("skip_error", "")
    skip_posted = context.pop("skip_posted", {})
    page.update(_item_context(request, item, lease.expires_at if lease else None,
                              judgment=selectors.judgment_of(request.user, item), **context))
    page.update({"skip_error": skip_error, "skip_posted": skip_posted})
    return _render_workspace(request, "annotation/_item.html", page, 422)


# --- the progress row of the workspace -------------------------------------------------------------------------------
# Every item shown carries the annotator's progress ("12 done · 480 left") and the campaign's. Counted afresh, both
# are scans of the campaign's items: at 20,000 items 25 ms of CPU per submit, eight times the rest of it
# (docs/benchmarks.md). So each process counts a campaign's items at most once per PROGRESS_SECONDS_PER_1000_ITEMS
# seconds per 1,000 items (at most PROGRESS_MAX_SECONDS) per language set, and adds what the annotator did since,
# from their own newest rows: their own submits and skips always move their numbers at once, and the others' work
# shows within that time. Campaigns under 1,000 items are counted afresh every time (a millisecond or less).
PROGRESS_SECONDS_PER_1000_ITEMS = 1
PROGRESS_MAX_SECONDS = 30


def progress_of(user, campaign: Campaign) -> tuple[dict, dict]:
    """(the annotator's progress, the campaign's), as selectors.annotator_progress and campaign_progress count them
    (of the campaign's, `judgments` and `percent` follow the annotator's own work between two counts)."""
    native, reading = selectors.annotator_languages(user)
    key = f"crossfeed:progress:{campaign.pk}:{','.join(native)}:{','.join(reading)}"
    snapshot = cache.get(key)
    if snapshot is None:
        totals = selectors.campaign_progress(campaign)
        seconds = min(totals["items"] * PROGRESS_SECONDS_PER_1000_ITEMS // 1000, PROGRESS_MAX_SECONDS)
        if not seconds:
            return selectors.annotator_progress(user, campaign), totals
        snapshot = {"taken": time.time(), "totals": totals, "seconds": seconds,
                    "open": Item.objects.filter(_open_item(campaign, native, reading)).count()}
        cache.set(key, snapshot, seconds)
    base_key = f"{key}:{snapshot['taken']}:{user.pk}"
    base = cache.get(base_key)
    if base is None:  # the annotator's own rows at this moment: their judgments, and their share of the open items
        base = _own_base(user, campaign, native, reading)
        cache.set(base_key, base, snapshot["seconds"])
    since = _own_since(user, campaign, base["at"])
    # Each judgment of a task item since took one open item off the annotator's list and added one to the campaign;
    # each skip took one off the list.
    done = base["done"] + since["done"]
    remaining = max(snapshot["open"] - base["open"] - since["tasks"] - since["skips"], 0)
    mine = {"done": done, "remaining": remaining,
            "percent": round(100 * done / (done + remaining), 1) if done + remaining else 100.0}
    totals = dict(snapshot["totals"])
    totals["judgments"] += since["tasks"]
    wanted = totals["judgments_wanted"]
    totals["percent"] = round(100 * totals["judgments"] / wanted, 1) if wanted else 0.0
    return mine, totals


def _open_item(campaign: Campaign, native: list[str], reading: list[str], prefix: str = "") -> Q:
    """selectors.annotator_progress's open items, before the annotator's own judgments and skips are taken out
    (`prefix`: the same condition on a related item, "item__")."""
    return Q(**{f"{prefix}campaign": campaign, f"{prefix}kind": Item.Kind.TASK,
                f"{prefix}response_language__in": native, f"{prefix}judgment_count__lt": F(f"{prefix}target")}) & (
        Q(**{f"{prefix}prompt_language__in": reading}) | Q(**{f"{prefix}pivot_language__in": reading}))


def _own(model, user, campaign: Campaign):
    # "+ 0" keeps SQLite's planner on the annotator's index (a few hundred rows) instead of the campaign's items
    # (all of them), which it otherwise prefers for lack of statistics.
    return model.objects.alias(in_campaign=ExpressionWrapper(F("item__campaign_id") + 0, output_field=IntegerField())
                               ).filter(annotator=user, in_campaign=campaign.pk)


def _own_base(user, campaign: Campaign, native: list[str], reading: list[str]) -> dict:
    """The annotator's judgments in the campaign up to now, and how many of the open items they judged or skipped."""
    now = timezone.now()
    condition = _open_item(campaign, native, reading, "item__")
    judged = _own(Judgment, user, campaign).filter(created_at__lte=now)
    skipped = _own(Skip, user, campaign).filter(condition, created_at__lte=now).exclude(
        item__judgments__annotator=user)
    return {"at": now, "done": judged.count(), "open": judged.filter(condition).count() + skipped.count()}


def _own_since(user, campaign: Campaign, moment) -> dict:
    """The annotator's judgments in the campaign since `moment` (all, and of task items), and skips of its task
    items (sql.activity_since)."""
    rows = sql.activity_since(annotator_id=user.pk, since=moment)
    task = (campaign.pk, Item.Kind.TASK)
    return {"done": sum(1 for row in rows if row[0] == "judgment" and row[1] == campaign.pk),
            "tasks": rows.count(("judgment", *task)), "skips": rows.count(("skip", *task))}


# The skip form's reasons (templates/annotation/_item.html), stored as these keys; "other" is stored with the
# annotator's own words after it ("other: ...").
SKIP_REASONS = {
    "cannot read the instruction": gettext_lazy("I cannot read the instruction"),
    "not my language": gettext_lazy("The responses are not in my language"),
    "offensive": gettext_lazy("Offensive or unsafe content"),
    "other": gettext_lazy("Other"),
}


def skip_reason_label(reason: str) -> str:
    """A stored reason as the annotator chose it, in their language."""
    if reason in SKIP_REASONS:
        return str(SKIP_REASONS[reason])
    if reason.startswith("other: "):
        return _("Other: %(reason)s") % {"reason": reason.removeprefix("other: ")}
    return reason or _("(no reason given)")


@require_POST
@login_required
def skip(request: HttpRequest, item_id: int) -> HttpResponse:
    _require_annotator(request)
    item = _get_item_for_annotator(request, item_id)
    reason = request.POST.get("reason", "")[:500].strip()
    if reason == "other":
        own_words = " ".join(request.POST.get("reason_other", "").split())[:400]
        if not own_words:
            return _render_refused(request, item, skip_error=_(
                "Not skipped: you chose “Other”, so write your reason in the box (a few words are "
                "enough), or choose one of the listed reasons."), skip_posted={"reason": reason})
        reason = f"other: {own_words}"
    try:
        item_skip(item=item, annotator=request.user, reason=reason)
    except CrossfeedError as exc:
        return _render_next(request, item.campaign, notice=exc.message)
    return _render_next(request, item.campaign, notice=_("Skipped."))


@require_GET
@login_required
def mine(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The annotator's own judgments in a campaign, newest first, each open for revision."""
    campaign = _get_campaign_for_user(request, campaign_id)
    judgments = selectors.judgments_of(request.user, campaign)
    skips = [{"skip": skip, "reason": skip_reason_label(skip.reason)}
             for skip in selectors.skips_of(request.user, campaign)]
    return render(request, "annotation/mine.html", {"campaign": campaign, "judgments": judgments, "skips": skips})


@require_POST
@login_required
def unskip(request: HttpRequest, item_id: int) -> HttpResponse:
    """Undo a skip: the item can be offered to the annotator again."""
    _require_annotator(request)
    item = _get_item_for_annotator(request, item_id)
    try:
        skip_undo(item=item, annotator=request.user)
    except NotFound:
        raise Http404(_("You have not skipped this item.")) from None
    messages.success(request, _("Skip undone: item %(item)s can be offered to you again.")
                     % {"item": item.external_id})
    return redirect("annotation:mine", campaign_id=item.campaign_id)


@require_GET
@login_required
def revise(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _get_item_for_annotator(request, item_id)
    judgment = selectors.judgment_of(request.user, item)
    if judgment is None:
        raise Http404(_("You have not judged this item."))
    # The progress row of the workspace, with its numbers (the revise page showed "done · left" and "%" alone).
    context = {"campaign": item.campaign, "revising": True}
    context["mine"], context["progress"] = progress_of(request.user, item.campaign)
    context.update(_item_context(request, item, None, judgment=judgment))
    return render(request, "annotation/revise.html", context)


# --- review: disagreements and adjudication (docs/campaigns.md) ----------------------------------------------------


def _require_reviewer(request: HttpRequest) -> None:
    """Reviewers (annotation.add_adjudication, the group "Reviewers": trusted native speakers, not staff) and staff
    who may read judgments."""
    if not (may_adjudicate(request.user) or user_may(request.user, "annotation.view_judgment")):
        raise PermissionDenied(_("This page is for reviewers. Ask an administrator to add your account to the "
                                 "group “Reviewers”."))


@require_GET
@login_required
def disagreements(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The items whose rankings disagree most, per language pair, sortable; each opens for adjudication."""
    _require_reviewer(request)
    campaign = _get_campaign_for_user(request, campaign_id)
    form = DisagreementFilterForm(request.GET)
    chosen = form.cleaned_data if form.is_valid() else {"pair": "", "sort": "disagreement"}
    pair = tuple(chosen["pair"].split(">", 1)) if chosen["pair"] else None
    found = competence.disagreements(campaign, items=competence.adjudicable_items(request.user), pair=pair,
                                     sort=chosen["sort"] or "disagreement")
    return render(request, "annotation/disagreements.html", {
        "campaign": campaign, "found": found, "pair": chosen["pair"], "sort": chosen["sort"] or "disagreement",
        "pairs": [(f"{p}>{r}", competence.pair_label(p, r)) for p, r in found["pairs"]],
        "may_adjudicate": may_adjudicate(request.user),
    })


@require_http_methods(["GET", "POST"])
@login_required
def adjudicate(request: HttpRequest, item_id: int) -> HttpResponse:
    """The judgments of one item side by side, with the letters each annotator saw, and the reviewer's final
    ranking (GET shows, POST records)."""
    _require_reviewer(request)
    item = get_object_or_404(competence.adjudicable_items(request.user).select_related("campaign"), pk=item_id)
    responses = list(item.responses.order_by("position"))
    errors: dict = {}
    posted = None
    if request.method == "POST":
        if not may_adjudicate(request.user):
            raise PermissionDenied(_("Only reviewers record final rankings."))
        data = request.POST.copy()
        data["idempotency_key"] = "adjudication"  # the judgment form's rank fields, without its replay key
        form = JudgmentForm(data, response_ids=[response.id for response in responses])
        posted = form.posted()
        wrong = [value for value in request.POST.getlist("wrong_language") if value.isdigit()]
        try:
            if not form.is_valid():
                raise InvalidInput(_("Please fix the marked fields."), field_errors=form.field_errors())
            adjudication_record(item=item, reviewer=request.user, ranks=form.service_arguments()["ranks"],
                                wrong_language=wrong, note=request.POST.get("note", "")[:5000])
        except InvalidInput as exc:
            errors = _lettered(exc.field_errors or {"__all__": [exc.message]}, item, responses, request.user)
        else:
            messages.success(request, _("Final ranking saved: the export uses it instead of the consensus."))
            return redirect("annotation:adjudicate", item_id=item.id)
    context = adjudication_context(request.user, item, responses, posted=posted)
    context["errors"] = errors
    return render(request, "annotation/adjudicate.html", context, status=422 if errors else 200)


def _lettered(errors: dict, item: Item, responses: list, user) -> dict:
    """Errors that start with a response id ("12: Give this response a rank.") name the reviewer's letter instead."""
    from annotation.serializers import response_order

    letters = {str(response_id): chr(ord("A") + index) for index, response_id in
               enumerate(response_order(item.id, user.id, [response.id for response in responses]))}
    lettered = {}
    for field, problems in errors.items():
        lettered[field] = []
        for problem in problems:
            head, _sep, rest = str(problem).partition(": ")
            lettered[field].append(_("Response %(letter)s: %(problem)s") % {"letter": letters[head], "problem": rest}
                                   if head in letters and rest else problem)
    return lettered


def adjudication_context(user, item: Item, responses: list, *, posted: dict | None = None) -> dict:
    """Responses in the reviewer's own order, lettered A, B, C as the reviewer sees them; per judgment the rank it
    gave and the letter its annotator saw the response under (each annotator saw their own order)."""
    from annotation.export.pairs import ItemJudgment, consensus_order
    from annotation.serializers import response_order

    ids = [response.id for response in responses]
    by_id = {response.id: response for response in responses}
    mine = response_order(item.id, user.id, ids)
    judgments = list(item.judgments.select_related("annotator").order_by("id"))
    show_names = user_may(user, "annotation.view_judgment")
    columns = []
    for number, judgment in enumerate(judgments, start=1):
        seen = {response_id: chr(ord("A") + index)
                for index, response_id in enumerate(response_order(item.id, judgment.annotator_id, ids))}
        columns.append({
            "name": judgment.annotator.get_username() if show_names
            else _("Annotator %(number)d") % {"number": number},
            "comment": judgment.comment, "seen": seen, "ranks": judgment.ranks, "flags": judgment.flags,
        })
    order = consensus_order(sorted(ids), [ItemJudgment.from_stored(j.annotator_id, j.ranks, j.flags)
                                          for j in judgments]) if judgments else []
    consensus = {response_id: position for position, response_id in enumerate(order, start=1)}
    final = Adjudication.objects.filter(item=item).first()
    ranks = dict(final.ranks if final else {}) | ((posted or {}).get("ranks") or {})
    rows = []
    for index, response_id in enumerate(mine):
        rows.append({
            "id": response_id, "letter": chr(ord("A") + index), "response": by_id[response_id],
            "cells": [{"rank": column["ranks"].get(str(response_id)), "seen": column["seen"][response_id],
                       "flags": column["flags"].get(str(response_id), [])} for column in columns],
            "consensus": consensus.get(response_id), "final": ranks.get(str(response_id)),
            "wrong_language": bool(final and response_id in (final.wrong_language or [])),
        })
    return {"campaign": item.campaign, "item": item, "rows": rows, "columns": columns, "final": final,
            "choices": range(1, len(ids) + 1), "may_adjudicate": may_adjudicate(user)}
