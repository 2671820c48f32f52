"""What the live pages of background jobs share (generation and translation jobs, training and evaluation runs): the
status partial that a job's page polls, and its Cancel and Retry buttons. Each app names its partial, the partial's
context and the job's page, and checks its own permissions; how the request is answered is the same for all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRefresh

from crossfeed.errors import Conflict

Job = TypeVar("Job", bound=models.Model)  # a job model with `is_finished`


def job_status_response(request: HttpRequest, job: models.Model, *, template: str,
                        context: Callable[[], dict]) -> HttpResponse:
    """The status partial (`template` with `context()`). When the page's own polling (`?polling=1`) finds the job
    ended, the whole page is reloaded instead: only the page shows what the job made (results, report, candidates)."""
    if request.htmx and job.is_finished and request.GET.get("polling"):
        return HttpResponseClientRefresh()
    return render(request, template, context())


def job_action_response(request: HttpRequest, job: Job, *, action: Callable[[Job], Job], done: str, template: str,
                        context: Callable[..., dict], reload: Callable[[int], Job], page: str) -> HttpResponse:
    """Cancel or retry `job` with `action` (a service; the caller has checked the permission to change the job).

    The outcome is `done`, or the message of the Conflict the service raised (the job had moved on: finished, already
    queued). htmx gets the status partial, `template` with `context(reload(job.pk), notice=..., error=...)`: read
    again, as the page shows it. A plain form post gets what job_action_redirect gives."""
    job, notice, error = _act(job, action, done)
    if request.htmx:
        return render(request, template, context(reload(job.pk), notice=notice, error=error))
    return _redirect(request, job, notice=notice, error=error, page=page)


def job_action_redirect(request: HttpRequest, job: Job, *, action: Callable[[Job], Job], done: str,
                        page: str) -> HttpResponse:
    """Cancel or retry `job` as job_action_response does, for a page whose buttons are plain forms: the outcome as a
    message (success, or the Conflict's message as an error) and a redirect to the URL named `page`, with the job's
    id."""
    job, notice, error = _act(job, action, done)
    return _redirect(request, job, notice=notice, error=error, page=page)


def _act(job: Job, action: Callable[[Job], Job], done: str) -> tuple[Job, str, str]:
    """(the job as the service returned it, or as it was on a Conflict; the notice; the error)."""
    try:
        return action(job), done, ""
    except Conflict as exc:
        return job, "", exc.message


def _redirect(request: HttpRequest, job: models.Model, *, notice: str, error: str, page: str) -> HttpResponse:
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(page, job.pk)
