"""Evaluation dashboards (server-rendered, htmx). Every signed-in user reads results; staff with the admin's
permissions start, retry and cancel runs, read the example outputs (every prompt and answer verbatim, as the API's
outputs download) and run win-rate campaigns. Model outputs are untrusted text: templates autoescape them, always.

A page and its htmx fragment render the same partial: the run page includes `_status.html`, which re-fetches
itself every 2 s while the run is queued or running and asks for a full reload when it ends (the results appear);
the outputs and comparison pages validate their query string with a Form and render the same table partial for
the page and for the fragment.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Campaign, JobStatus
from crossfeed.errors import CrossfeedError
from crossfeed.jobs.views import job_action_redirect, job_status_response
from crossfeed.permissions import require_admin_permissions, user_may
from evaluation import selectors
from evaluation.forms import CompareForm, OutputsForm, WinRateCampaignForm
from evaluation.models import EvaluationRun
from evaluation.services import evaluation_run_cancel, evaluation_run_retry, evaluation_runs_fail_stale
from evaluation.services.sources import FULL, SAMPLE, SUPPORTED, benchmark_coverage
from evaluation.services.winrate import winrate_campaign_create, winrate_runs, winrate_summary

VIEW_RUNS = "evaluation.view_evaluationrun"
CHANGE_RUNS = "evaluation.change_evaluationrun"


def _get_run_for_user(request: HttpRequest, run_id: int) -> EvaluationRun:
    evaluation_runs_fail_stale()  # a run whose worker died shows as failed, with the reason
    return get_object_or_404(selectors.runs_visible_to(request.user), pk=run_id)


def duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _status_context(request: HttpRequest, run: EvaluationRun) -> dict:
    return {
        "run": run,
        "polling": not run.is_finished,
        "eta": duration(run.eta_seconds),
        "can_cancel": user_may(request.user, CHANGE_RUNS) and run.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        and not run.cancel_requested,
        "can_retry": user_may(request.user, CHANGE_RUNS) and run.status in (JobStatus.FAILED, JobStatus.CANCELLED),
    }


@require_GET
@login_required
def runs(request: HttpRequest) -> HttpResponse:
    evaluation_runs_fail_stale()
    recent = selectors.runs_visible_to(request.user)[:200]
    return render(request, "evaluation/runs.html", {"runs": recent})


@require_GET
@login_required
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    evaluation_run = _get_run_for_user(request, run_id)
    context = {**_status_context(request, evaluation_run), "tables": selectors.benchmark_tables(evaluation_run)}
    return render(request, "evaluation/run.html", context)


@require_GET
@login_required
def run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    evaluation_run = _get_run_for_user(request, run_id)
    return job_status_response(request, evaluation_run, template="evaluation/_status.html",
                               context=lambda: _status_context(request, evaluation_run))


@require_GET
@login_required
def results_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    evaluation_run = _get_run_for_user(request, run_id)
    response = HttpResponse(selectors.results_csv(evaluation_run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation_run.id}-results.csv"'
    return response


@require_GET
@login_required
def outputs(request: HttpRequest, run_id: int) -> HttpResponse:
    require_admin_permissions(request, VIEW_RUNS)
    evaluation_run = _get_run_for_user(request, run_id)
    form = OutputsForm(request.GET or None, run=evaluation_run)
    context = {"run": evaluation_run, "form": form}
    if form.is_valid():
        context["outputs"] = selectors.example_outputs(
            evaluation_run, benchmark=form.cleaned_data["benchmark"], language=form.cleaned_data["language"],
            off_target_only=form.cleaned_data["off_target"], page=form.cleaned_data["page"],
        )
        query = request.GET.copy()
        query.pop("page", None)
        context["query"] = query.urlencode()
    template = "evaluation/_outputs.html" if request.htmx else "evaluation/outputs.html"
    return render(request, template, context, status=400 if form.is_bound and not form.is_valid() else 200)


@require_GET
@login_required
def compare(request: HttpRequest) -> HttpResponse:
    form = CompareForm(request.GET or None)
    context: dict = {"form": form}
    if form.is_valid():
        run_a, run_b = form.cleaned_data["a"], form.cleaned_data["b"]
        if form.cleaned_data["version"] is not None:
            run_a, run_b = selectors.version_and_parent_runs(form.cleaned_data["version"])
        if run_a is None or run_b is None:
            context["missing"] = _("There is no finished evaluation of this version and of its parent on the same "
                                   "benchmarks yet.")
        else:
            context.update(run_a=run_a, run_b=run_b, table=selectors.comparison(
                run_a, run_b, tiers=form.cleaned_data["tier"], scripts=form.cleaned_data["script"],
                all_metrics=form.cleaned_data["metrics"] == "all",
            ))
            if run_a.model_label != run_b.model_label:  # a win rate needs two different models
                context["winrate_form"] = WinRateCampaignForm(
                    initial={"name": f"Win rate: {run_b.model_label} vs {run_a.model_label}"})
    template = "evaluation/_compare.html" if request.htmx else "evaluation/compare.html"
    return render(request, template, context, status=400 if form.is_bound and not form.is_valid() else 200)


def _act(request: HttpRequest, run_id: int, action: Callable[..., EvaluationRun], done: str) -> HttpResponse:
    """Retry or cancel; the outcome as a message on the run's page."""
    require_admin_permissions(request, CHANGE_RUNS)
    evaluation_run = _get_run_for_user(request, run_id)
    return job_action_redirect(request, evaluation_run, action=lambda run: action(run=run), done=done,
                               page="evaluation:run")


@require_POST
@login_required
def retry(request: HttpRequest, run_id: int) -> HttpResponse:
    return _act(request, run_id, evaluation_run_retry,
                _("Queued again; it continues after the outputs already saved."))


@require_POST
@login_required
def cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    return _act(request, run_id, evaluation_run_cancel,
                _("Cancel requested; the worker stops after its current batch."))


@require_POST
@login_required
def winrate_create(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW_RUNS, "annotation.add_campaign")
    run_a = get_object_or_404(EvaluationRun, pk=request.POST.get("a") or 0)
    run_b = get_object_or_404(EvaluationRun, pk=request.POST.get("b") or 0)
    form = WinRateCampaignForm(request.POST)
    back = f"{reverse('evaluation:compare')}?a={run_a.id}&b={run_b.id}"
    if not form.is_valid():
        messages.error(request, "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
        return redirect(back)
    try:
        campaign, counts = winrate_campaign_create(run_a=run_a, run_b=run_b, created_by=request.user,
                                                   **form.cleaned_data)
    except CrossfeedError as exc:
        problems = exc.field_errors or {exc.field or "": [exc.message]}
        messages.error(request, "; ".join(f"{key}: {' '.join(value)}" for key, value in problems.items()))
        return redirect(back)
    messages.success(request, _("Campaign %(name)s created with %(items)d items (%(identical)d prompts had identical "
                                "answers and were left out).") % {"name": campaign.name, **counts})
    return redirect("evaluation:winrate", campaign.id)


@require_GET
@login_required
def winrate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    require_admin_permissions(request, VIEW_RUNS, "annotation.view_campaign")
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if winrate_runs(campaign) is None:
        raise Http404(_("This campaign was not made from two evaluation runs."))
    return render(request, "evaluation/winrate.html", {"campaign": campaign, **winrate_summary(campaign=campaign)})


@require_GET
@login_required
def coverage(request: HttpRequest) -> HttpResponse:
    """Per registry language, which benchmarks can evaluate it: full data, the shipped sample, or supported by the
    public release but not downloaded (staff with access to the benchmark sources: it names folders)."""
    require_admin_permissions(request, "evaluation.view_benchmarksource")
    benchmarks, rows = benchmark_coverage()
    columns = [{"benchmark": benchmark,
                **{status: sum(row.cells[index] == status for row in rows) for status in (FULL, SAMPLE, SUPPORTED)}}
               for index, benchmark in enumerate(benchmarks)]
    return render(request, "evaluation/coverage.html", {
        "columns": columns, "rows": rows, "evaluable": sum(row.evaluable for row in rows),
        "without_data": [row.language for row in rows if not row.evaluable],
    })
