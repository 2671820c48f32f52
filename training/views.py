"""The live training-run pages, for staff with the admin's training-run permissions. The run page includes
`_run_status.html`, which re-fetches itself every 2 s while the run is queued or running (and renders no trigger
once it has finished, which ends the polling); the charts live outside it and are redrawn from the chart data it
carries (static/js/training.js)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation.models import JobStatus
from crossfeed.jobs.views import job_action_response
from crossfeed.permissions import require_admin_permissions, user_may
from training import selectors
from training.models import TrainingRun
from training.services.runs import training_run_cancel, training_run_retry, training_runs_fail_stale

# Runs spend GPU hours and their data holds every annotator's rankings: the admin's permissions, on these pages too.
VIEW = "training.view_trainingrun"
CHANGE = "training.change_trainingrun"


def _get_run_for_staff(request: HttpRequest, run_id: int, *permissions: str) -> TrainingRun:
    require_admin_permissions(request, VIEW, *permissions)
    training_runs_fail_stale()  # a run whose worker died shows as failed, with the reason
    run = selectors.run_detail(run_id)
    if run is None:
        raise Http404(_("There is no training run %(id)d.") % {"id": run_id})
    return run


def duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _status_context(request: HttpRequest, run: TrainingRun, *, notice: str = "", error: str = "") -> dict:
    may_change = user_may(request.user, CHANGE)
    return {
        "run": run,
        "polling": not run.is_finished,
        # Only a running run has a meaningful ETA; a finished one may still hold its last estimate.
        "eta": duration(run.eta_seconds) if run.status == JobStatus.RUNNING else "",
        "can_cancel": may_change and run.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not run.cancel_requested,
        "can_retry": may_change and run.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "versions": [(version, selectors.manifest_summary(version)) for version in run.versions.all()],
        "chart": selectors.run_chart(run),
        "notice": notice,
        "action_error": error,
    }


@require_GET
@login_required
def runs(request: HttpRequest) -> HttpResponse:
    require_admin_permissions(request, VIEW)
    training_runs_fail_stale()
    return render(request, "training/runs.html", {"runs": selectors.runs_listed()[:200]})


@require_GET
@login_required
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    return render(request, "training/run.html", _status_context(request, _get_run_for_staff(request, run_id)))


@require_GET
@login_required
def run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    return render(request, "training/_run_status.html",
                  _status_context(request, _get_run_for_staff(request, run_id)))


def _act(request: HttpRequest, run_id: int, action: Callable[..., TrainingRun], done: str) -> HttpResponse:
    """Cancel or retry; htmx gets the status partial with the outcome, a plain form post a redirect."""
    run = _get_run_for_staff(request, run_id, CHANGE)
    return job_action_response(request, run, action=lambda job: action(run=job), done=done,
                               template="training/_run_status.html", context=partial(_status_context, request),
                               reload=selectors.run_detail, page="training:run")


@require_POST
@login_required
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    return _act(request, run_id, training_run_cancel,
                _("Cancel requested: a queued run stops at once, a running one at its next step (it checkpoints)."))


@require_POST
@login_required
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    return _act(request, run_id, training_run_retry,
                _("Queued again: each stage resumes from its newest checkpoint."))
