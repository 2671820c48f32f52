"""Translation pages for staff with the admin's translation-job permissions: the list of jobs (with the translators
and the instruction sets), the "New translation job" form, and a job's live page: progress polled by htmx,
throughput per translator, failures, Cancel and Retry, and once it succeeded the report per language (the share
chosen from each translator, the score histogram, how many fall below the threshold, post-editing counts), "Send to
post-editing" and "Export SFT data" with the exports and their files.

Translations, source rows and translators' error messages are untrusted text: templates autoescape them, always.
The buttons call the services the API calls: translation/services/post_edit.py and instructions/services/exports.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.languages import get_language
from annotation.models import JobStatus
from crossfeed.errors import CrossfeedError
from crossfeed.jobs.views import job_action_response, job_status_response
from crossfeed.permissions import require_admin_permissions, user_may
from generation.services.jobs import throughput_summary
from generation.views import throughput_rows
from instructions.models import InstructionExport, InstructionSet
from instructions.services.exports import CARD_FILE, instruction_export_create
from translation.forms import ExportForm, PostEditForm, TranslationJobForm
from translation.models import TranslationJob, Translator
from translation.services.choice import HISTOGRAM_BINS
from translation.services.jobs import (
    translation_job_cancel,
    translation_job_create,
    translation_job_payload,
    translation_job_retry,
    translation_jobs_fail_stale,
)
from translation.services.post_edit import post_edit_campaign_create

# Jobs spend accelerator hours or paid endpoint calls: the admin's permissions, on these pages too.
VIEW = "translation.view_translationjob"
ADD = "translation.add_translationjob"
CHANGE = "translation.change_translationjob"
POST_EDIT = ("annotation.add_campaign",)
EXPORT = ("instructions.add_instructionexport",)
EXPORTS_SHOWN = 20


def _get_job_for_staff(request: HttpRequest, job_id: int, *permissions: str) -> TranslationJob:
    require_admin_permissions(request, VIEW, *permissions)
    translation_jobs_fail_stale()  # a job whose worker died shows as failed, with the reason
    job = (TranslationJob.objects.select_related("instruction_set", "created_by", "post_edit_campaign")
           .filter(pk=job_id).first())
    if job is None:
        raise Http404(_("There is no translation job %(id)d.") % {"id": job_id})
    return job


def _status_context(request: HttpRequest, job: TranslationJob, *, notice: str = "", error: str = "") -> dict:
    may_change = user_may(request.user, CHANGE)
    throughput = job.throughput if isinstance(job.throughput, dict) else {}
    return {
        "job": job,
        "polling": not job.is_finished,
        "can_cancel": may_change and job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not job.cancel_requested,
        "can_retry": may_change and job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "throughput": throughput_rows(throughput),
        "throughput_total": throughput_summary(throughput),
        "notice": notice,
        "action_error": error,
    }


def _histogram(counts: list, threshold: float) -> list[dict]:
    """The 10 bins as bars: each one's range, count, height in tenths of the tallest (a CSS class: the page's
    Content-Security-Policy allows no inline style), and whether it lies wholly under the threshold."""
    counts = [count if isinstance(count, int) else 0 for count in (counts or [])][:HISTOGRAM_BINS]
    counts += [0] * (HISTOGRAM_BINS - len(counts))
    tallest = max(counts) or 1
    bars = []
    for index, count in enumerate(counts):
        low, high = index / HISTOGRAM_BINS, (index + 1) / HISTOGRAM_BINS
        # A bin with anything in it is at least one tenth high: a single translation must not look like none.
        height = max(1, round(10 * count / tallest)) if count else 0
        bars.append({"low": low, "high": high, "count": count, "height": height, "below": high <= threshold})
    return bars


def _percent(part: Any, whole: Any) -> float | None:
    if not isinstance(part, int | float) or not isinstance(whole, int | float) or not whole:
        return None
    return round(100 * part / whole, 1)


def language_rows(job: TranslationJob, per_language: dict[str, dict]) -> list[dict]:
    """The report per language as the page shows it, in the job's language order. Keys the report does not have
    yet (post-editing's, before a campaign exists) read as absent, never as an error."""
    labels = [entry.get("label", "") for entry in job.translators or []]
    rows = []
    for code in job.languages or []:
        entry = per_language.get(code) or {}
        spec = get_language(code)
        total = entry.get("rows") or 0
        chosen_by = entry.get("chosen_by") or {}
        extra = [label for label in chosen_by if label not in labels]
        post_edit = entry.get("post_edit") or {}
        rows.append({
            "code": code, "name": spec.name if spec else code, "direction": spec.direction if spec else "ltr",
            "rows": total, "reported": bool(entry),
            "shares": [{"label": label, "count": chosen_by.get(label, 0),
                        "percent": _percent(chosen_by.get(label, 0), total)} for label in [*labels, *extra]],
            "mean_quality": entry.get("mean_quality"),
            "scorer": entry.get("scorer") or "", "scorer_error": entry.get("scorer_error") or "",
            "histogram": _histogram(entry.get("histogram") or [], job.quality_threshold),
            "below_threshold": entry.get("below_threshold"),
            "below_percent": _percent(entry.get("below_threshold"), total),
            "not_acceptable": entry.get("not_acceptable"),
            "post_edit": {key: post_edit.get(key) for key in ("pending", "accepted", "edited", "unusable",
                                                              "mean_edit_distance")},
            "post_edited": entry.get("post_edited"),
        })
    return rows


def _file_url(export_id: int, name: str) -> str:
    """The API's download, which a staff member's session may call."""
    return reverse("api-instruction-export-file", kwargs={"export_id": export_id, "name": name})


def _train_url(export_id: int) -> str:
    return reverse("admin:training_trainingrun_new") + "?" + urlencode({"kind": "sft", "sft_dataset": export_id})


def _exports(job: TranslationJob) -> list[dict]:
    """The SFT exports of this job's translations, newest first, with their files' downloads once published."""
    rows = []
    for export in InstructionExport.objects.filter(translation_job=job).select_related("created_by") \
            .order_by("-id")[:EXPORTS_SHOWN]:
        succeeded = export.status == JobStatus.SUCCEEDED
        files = [{**entry, "url": _file_url(export.pk, entry["name"])} for entry in export.files or []
                 if succeeded and isinstance(entry, dict) and isinstance(entry.get("name"), str)]
        rows.append({"export": export, "files": files,
                     "card_url": _file_url(export.pk, CARD_FILE) if succeeded else "",
                     "train_url": _train_url(export.pk) if succeeded else ""})
    return rows


def _exports_context(request: HttpRequest, job: TranslationJob) -> dict:
    exports = _exports(job)
    return {"job": job, "exports": exports,
            "exports_polling": any(not row["export"].is_finished for row in exports),
            "may_download": user_may(request.user, "instructions.view_instructionexport"),
            "may_train": user_may(request.user, "training.add_trainingrun")}


def _page_context(request: HttpRequest, job: TranslationJob, *, post_edit_form: PostEditForm | None = None,
                  export_form: ExportForm | None = None) -> dict:
    payload = translation_job_payload(job)
    succeeded = job.status == JobStatus.SUCCEEDED
    may_post_edit = succeeded and user_may(request.user, CHANGE, *POST_EDIT)
    may_export = succeeded and user_may(request.user, *EXPORT)
    return {
        **_status_context(request, job),
        **_exports_context(request, job),
        "report": language_rows(job, payload.get("per_language") or {}) if succeeded else [],
        "post_edit_form": (post_edit_form or PostEditForm(initial={"campaign_name": _default_campaign_name(job)}))
        if may_post_edit else None,
        "export_form": (export_form or ExportForm(languages=_job_languages(job))) if may_export else None,
    }


def _job_languages(job: TranslationJob) -> list[tuple[str, str]]:
    return [(row["code"], f"{row['name']} ({row['code']})") for row in language_rows(job, {})]


def _default_campaign_name(job: TranslationJob) -> str:
    return _("Post-editing: %(set)s, job %(id)d") % {"set": job.instruction_set.name, "id": job.pk}


@require_GET
@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW)
    translation_jobs_fail_stale()
    context = {
        "jobs": TranslationJob.objects.select_related("instruction_set", "created_by")[:200],
        "translators": Translator.objects.select_related("base_model", "model_version", "endpoint"),
        "instruction_sets": InstructionSet.objects.select_related("language")[:200],
        "may_add": user_may(request.user, ADD),
        "may_add_translator": user_may(request.user, "translation.add_translator"),
        "may_add_set": user_may(request.user, "instructions.add_instructionset"),
    }
    return render(request, "translation/jobs.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW, ADD)
    form = TranslationJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = translation_job_create(created_by=request.user, **form.service_arguments())
        except CrossfeedError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("Translation job %(id)d queued; a worker on queue “translation” runs it.")
                             % {"id": job.id})
            return redirect("translation:job", job_id=job.id)
    context = {"form": form, "has_translators": Translator.objects.exists(),
               "may_add_translator": user_may(request.user, "translation.add_translator")}
    return render(request, "translation/new.html", context, status=400 if request.method == "POST" else 200)


@require_GET
@login_required
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "translation/job.html", _page_context(request, _get_job_for_staff(request, job_id)))


@require_GET
@login_required
def job_status(request: HttpRequest, job_id: int) -> HttpResponse:
    translation_job = _get_job_for_staff(request, job_id)
    return job_status_response(request, translation_job, template="translation/_job_status.html",
                               context=lambda: _status_context(request, translation_job))


@require_GET
@login_required
def job_exports(request: HttpRequest, job_id: int) -> HttpResponse:
    translation_job = _get_job_for_staff(request, job_id)
    return render(request, "translation/_exports.html", _exports_context(request, translation_job))


def _act(request: HttpRequest, job_id: int, action: Callable[..., TranslationJob], done: str) -> HttpResponse:
    """Cancel or retry; htmx gets the status partial with the outcome, a plain form post a redirect."""
    translation_job = _get_job_for_staff(request, job_id, CHANGE)
    return job_action_response(request, translation_job, action=lambda job: action(job=job), done=done,
                               template="translation/_job_status.html", context=partial(_status_context, request),
                               reload=lambda pk: _get_job_for_staff(request, pk), page="translation:job")


@require_POST
@login_required
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    return _act(request, job_id, translation_job_cancel,
                _("Cancel requested: a queued job stops at once, a running one after its current batch."))


@require_POST
@login_required
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    return _act(request, job_id, translation_job_retry,
                _("Queued again: it continues after the translations already saved."))


@require_POST
@login_required
def job_post_edit(request: HttpRequest, job_id: int) -> HttpResponse:
    """Send the job's weak translations (and an audit sample) to native speakers: a post-editing campaign."""
    translation_job = _get_job_for_staff(request, job_id, CHANGE, *POST_EDIT)
    form = PostEditForm(request.POST)
    if form.is_valid():
        try:
            campaign = post_edit_campaign_create(job=translation_job, created_by=request.user,
                                                 **form.service_arguments())
        except CrossfeedError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("Post-editing campaign “%(name)s” created: %(items)d translations to "
                                        "post-edit.") % {"name": campaign.name, "items": campaign.items.count()})
            return redirect(reverse("translation:job", args=[translation_job.id]) + "#post-edit")
    return render(request, "translation/job.html", _page_context(request, translation_job, post_edit_form=form),
                  status=400)


@require_POST
@login_required
def job_export(request: HttpRequest, job_id: int) -> HttpResponse:
    """Queue an SFT export of the job's usable translations (and the source rows)."""
    translation_job = _get_job_for_staff(request, job_id, *EXPORT)
    form = ExportForm(request.POST, languages=_job_languages(translation_job))
    if form.is_valid():
        try:
            export = instruction_export_create(instruction_set=translation_job.instruction_set,
                                               translation_job=translation_job, created_by=request.user,
                                               **form.service_arguments())
        except CrossfeedError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("SFT export %(id)d queued; its files appear below when it is done.")
                             % {"id": export.pk})
            return redirect(reverse("translation:job", args=[translation_job.id]) + "#exports-section")
    return render(request, "translation/job.html", _page_context(request, translation_job, export_form=form),
                  status=400)
