"""Annotator pages (server-rendered, htmx). The workspace is one partial, `_item.html`, that the page loads with a
POST and that every submit or skip replaces; no GET changes state."""

from __future__ import annotations

import time
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from annotation import selectors
from annotation.forms import JudgmentForm
from annotation.models import Campaign, Item, Judgment
from annotation.serializers import item_payload
from annotation.services.assignment import item_skip, lease_next
from annotation.services.judgments import judgment_submit
from crossfeed.errors import Conflict, CrossfeedError, InvalidInput, NotFound


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
    return render(request, "annotation/annotate.html", {"campaign": campaign})


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
    context["mine"] = selectors.annotator_progress(request.user, campaign)
    context["progress"] = selectors.campaign_progress(campaign)
    if lease is None:
        return _render_workspace(request, "annotation/_done.html", context, status)
    item = selectors.item_with_responses(lease.item_id)
    context.update(_item_context(request, item, lease.expires_at))
    return _render_workspace(request, "annotation/_item.html", context, status)


def _item_context(request: HttpRequest, item: Item, lease_expires_at, *, judgment: Judgment | None = None,
                  errors: dict | None = None, posted: dict | None = None) -> dict:
    payload = item_payload(item, request.user.id, None)
    ranks = dict((judgment.ranks if judgment else {}) | (posted or {}).get("ranks", {}))
    flags = (posted or {}).get("flags") or (judgment.flags if judgment else {})
    for response in payload["responses"]:
        response["rank"] = ranks.get(str(response["id"]))
        response["flags"] = flags.get(str(response["id"]), [])
    return {
        "item": item,
        "payload": payload,
        "choices": range(1, len(payload["responses"]) + 1),
        "flag_vocabulary": item.campaign.flag_vocabulary,
        "lease_expires_at": lease_expires_at,
        "judgment": judgment,
        "errors": errors or {},
        "comment": (posted or {}).get("comment", judgment.comment if judgment else ""),
        "idempotency_key": uuid.uuid4().hex,
        "rendered_at": int(time.time()),
    }


@require_POST
@login_required
def submit(request: HttpRequest, item_id: int) -> HttpResponse:
    _require_annotator(request)
    item = _get_item_for_annotator(request, item_id)
    campaign = item.campaign
    response_ids = list(item.responses.values_list("id", flat=True))
    form = JudgmentForm(request.POST, response_ids=response_ids)
    posted = form.posted()
    try:
        if not form.is_valid():
            raise InvalidInput(_("Please fix the marked fields."), field_errors=form.field_errors())
        judgment_submit(annotator=request.user, item_id=item.id, **form.service_arguments())
    except InvalidInput as exc:
        judgment = selectors.judgment_of(request.user, item)
        lease = selectors.live_lease(request.user, item)
        context = {"campaign": campaign, "mine": selectors.annotator_progress(request.user, campaign),
                   "progress": selectors.campaign_progress(campaign)}
        context.update(_item_context(request, item, lease.expires_at if lease else None, judgment=judgment,
                                     errors=exc.field_errors or {"__all__": [exc.message]}, posted=posted))
        return _render_workspace(request, "annotation/_item.html", context, 422)
    except Conflict as exc:
        return _render_next(request, campaign, notice=exc.message)
    except NotFound as exc:
        raise Http404(exc.message) from None
    if request.POST.get("return") == "mine":
        target = reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
        return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    return _render_next(request, campaign, notice=_("Saved. Here is the next item."))


@require_POST
@login_required
def skip(request: HttpRequest, item_id: int) -> HttpResponse:
    _require_annotator(request)
    item = _get_item_for_annotator(request, item_id)
    reason = request.POST.get("reason", "")[:500]
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
    return render(request, "annotation/mine.html", {"campaign": campaign, "judgments": judgments})


@require_GET
@login_required
def revise(request: HttpRequest, item_id: int) -> HttpResponse:
    item = _get_item_for_annotator(request, item_id)
    judgment = selectors.judgment_of(request.user, item)
    if judgment is None:
        raise Http404(_("You have not judged this item."))
    context = {"campaign": item.campaign, "revising": True}
    context.update(_item_context(request, item, None, judgment=judgment))
    return render(request, "annotation/revise.html", context)
