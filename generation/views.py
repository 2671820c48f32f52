"""Generation pages for staff with the admin's generation-job permissions: the list of jobs, the "New generation job"
form, a job's live page (progress polled by htmx, throughput per generator, counts, skipped prompts and failures,
Cancel and Retry), "Next round" from a succeeded training run, and the lineage of rounds of a campaign.

Model outputs and endpoint answers are untrusted text: templates autoescape them, always. The job page includes
`_job_status.html`, which re-fetches itself every 2 s while the job is queued or running and asks for a full reload
when it ends (the page then shows some of the candidates), as the evaluation run page does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.models import Campaign, JobStatus, Response
from crossfeed.errors import CrossfeedError
from crossfeed.jobs.views import job_action_response, job_status_response
from crossfeed.permissions import require_admin_permissions, user_may
from generation.forms import GenerationJobForm, NextRoundForm
from generation.models import GenerationJob
from generation.services.jobs import (
    generation_job_cancel,
    generation_job_create,
    generation_job_retry,
    generation_jobs_fail_stale,
    throughput_summary,
)
from generation.services.lineage import lineage as lineage_of
from generation.services.rounds import default_campaign_name, next_round_create
from training.models import TrainingRun
from training.selectors import final_version

# Jobs spend accelerator hours and their campaigns go to annotators: the admin's permissions, on these pages too.
VIEW = "generation.view_generationjob"
ADD = "generation.add_generationjob"
CHANGE = "generation.change_generationjob"
EXAMPLES = 6  # generated responses shown on a finished job's page


def _get_job_for_staff(request: HttpRequest, job_id: int, *permissions: str) -> GenerationJob:
    require_admin_permissions(request, VIEW, *permissions)
    generation_jobs_fail_stale()  # a job whose worker died shows as failed, with the reason
    job = (GenerationJob.objects.select_related("campaign", "source_campaign", "training_run", "created_by")
           .filter(pk=job_id).first())
    if job is None:
        raise Http404(_("There is no generation job %(id)d.") % {"id": job_id})
    return job


def throughput_rows(throughput) -> list[dict]:
    """Per generator: label, prompts, outputs, new tokens, seconds, prompts/s, tokens/s, whichever the job recorded
    (a mapping label -> figures, or a list of figures carrying their label)."""
    if isinstance(throughput, dict):
        entries = [{"label": label, **figures} for label, figures in throughput.items() if isinstance(figures, dict)]
    elif isinstance(throughput, list):
        entries = [entry for entry in throughput if isinstance(entry, dict)]
    else:
        entries = []
    rows = []
    for entry in entries:
        rows.append({
            "label": entry.get("label") or entry.get("generator") or "",
            "prompts": entry.get("prompts"), "outputs": entry.get("outputs"), "new_tokens": entry.get("new_tokens"),
            "seconds": entry.get("seconds"),
            "prompts_per_second": entry.get("prompts_per_second", entry.get("prompts/s")),
            "tokens_per_second": entry.get("tokens_per_second", entry.get("tokens/s")),
        })
    return rows


def _status_context(request: HttpRequest, job: GenerationJob, *, notice: str = "", error: str = "") -> dict:
    may_change = user_may(request.user, CHANGE)
    return {
        "job": job,
        "polling": not job.is_finished,
        "can_cancel": may_change and job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not job.cancel_requested,
        "can_retry": may_change and job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "throughput": throughput_rows(job.throughput),
        "throughput_total": throughput_summary(job.throughput or {}) if isinstance(job.throughput, dict) else None,
        "notice": notice,
        "action_error": error,
    }


def _examples(job: GenerationJob) -> list[Response]:
    if job.campaign_id is None or job.status != JobStatus.SUCCEEDED:
        return []
    return list(Response.objects.filter(item__campaign_id=job.campaign_id, metadata__job=job.pk)
                .select_related("item", "language", "item__prompt_language").order_by("item_id", "position")
                [:EXAMPLES])


@require_GET
@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW)
    generation_jobs_fail_stale()
    recent = GenerationJob.objects.select_related("campaign", "training_run", "created_by")[:200]
    return render(request, "generation/jobs.html", {"jobs": recent, "may_add": user_may(request.user, ADD)})


@require_http_methods(["GET", "POST"])
@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW, ADD)
    form = GenerationJobForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = generation_job_create(created_by=request.user, **form.service_arguments())
        except CrossfeedError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("Generation job %(id)d queued; a worker on queue “generation” runs it.")
                             % {"id": job.id})
            return redirect("generation:job", job_id=job.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "generation/new.html", {"form": form}, status=status)


@require_GET
@login_required
def job(request: HttpRequest, job_id: int) -> HttpResponse:
    generation_job = _get_job_for_staff(request, job_id)
    context = {**_status_context(request, generation_job), "examples": _examples(generation_job)}
    return render(request, "generation/job.html", context)


@require_GET
@login_required
def job_status(request: HttpRequest, job_id: int) -> HttpResponse:
    generation_job = _get_job_for_staff(request, job_id)
    return job_status_response(request, generation_job, template="generation/_job_status.html",
                               context=lambda: _status_context(request, generation_job))


def _act(request: HttpRequest, job_id: int, action: Callable[..., GenerationJob], done: str) -> HttpResponse:
    """Cancel or retry; htmx gets the status partial with the outcome, a plain form post a redirect."""
    generation_job = _get_job_for_staff(request, job_id, CHANGE)
    return job_action_response(request, generation_job, action=lambda job: action(job=job), done=done,
                               template="generation/_job_status.html", context=partial(_status_context, request),
                               reload=lambda pk: _get_job_for_staff(request, pk), page="generation:job")


@require_POST
@login_required
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    return _act(request, job_id, generation_job_cancel,
                _("Cancel requested: a queued job stops at once, a running one after its current batch."))


@require_POST
@login_required
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    return _act(request, job_id, generation_job_retry,
                _("Queued again: it continues after the outputs already saved."))


def _run_for_staff(request: HttpRequest, run_id: int) -> TrainingRun:
    require_admin_permissions(request, VIEW, ADD, "training.view_trainingrun")
    run = (TrainingRun.objects.select_related("base_model", "export__campaign", "sft_export__campaign")
           .prefetch_related("versions").filter(pk=run_id).first())
    if run is None:
        raise Http404(_("There is no training run %(id)d.") % {"id": run_id})
    return run


@require_http_methods(["GET", "POST"])
@login_required
def next_round(request: HttpRequest, run_id: int) -> HttpResponse:
    """GET: the next round's form with every option; POST (from it or from the training run page): queue the job
    and open its page."""
    run = _run_for_staff(request, run_id)
    form = NextRoundForm(request.POST or None, initial={"against_parent": True, "samples_per_generator": 1})
    if request.method == "POST" and form.is_valid():
        try:
            generation_job = next_round_create(run=run, created_by=request.user, **form.service_arguments())
        except CrossfeedError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("Next round queued: generation job %(id)d makes the campaign “%(name)s”.")
                             % {"id": generation_job.id, "name": generation_job.campaign_name})
            return redirect("generation:job", job_id=generation_job.id)
    version = final_version(run) if run.status == JobStatus.SUCCEEDED else None
    context = {"run": run, "form": form, "version": version,
               "default_name": _default_name(run, version) if version else ""}
    return render(request, "generation/next_round.html", context, status=400 if request.method == "POST" else 200)


def _default_name(run: TrainingRun, version) -> str:
    try:
        return default_campaign_name(run=run, version=version)
    except CrossfeedError:
        return ""


@require_GET
@login_required
def lineage(request: HttpRequest, campaign_id: int) -> HttpResponse:
    require_admin_permissions(request, VIEW, "annotation.view_campaign", "training.view_trainingrun")
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    rounds = lineage_of(campaign=campaign)
    return render(request, "generation/lineage.html", {"campaign": campaign, "rounds": rounds})
