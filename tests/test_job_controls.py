"""The job controls every job page and job admin shares (crossfeed/jobs/views.py, crossfeed/jobs/admin.py), on their
own: how Cancel and Retry answer htmx and a plain form post, when a polled status partial turns into a reload, and
the admin actions' messages. The apps' view and admin tests cover the wiring to their models and permissions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse
from django_htmx.middleware import HtmxDetails

from crossfeed.errors import Conflict, InvalidInput
from crossfeed.jobs.admin import each_job
from crossfeed.jobs.views import job_action_redirect, job_action_response, job_status_response
from training.models import TrainingRun

OUTCOME = "jobs/_action_outcome.html"  # renders only `notice` and `action_error`: the outcome is all there is to see
PAGE = "training:run"  # any job page named by its id


class Job:
    """What the helpers read of a job row: its id and whether it has ended."""

    def __init__(self, pk: int, *, is_finished: bool = False) -> None:
        self.pk = self.id = pk
        self.is_finished = is_finished


def _request(method: str = "post", *, htmx: bool = False, query: str = ""):
    request = getattr(RequestFactory(), method)("/" + query, headers={"HX-Request": "true"} if htmx else {})
    request.htmx = HtmxDetails(request)
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def _outcome_context(job, *, notice: str, error: str) -> dict:
    return {"job": job, "notice": notice, "action_error": error}


def _refuse(job):
    raise Conflict(f"Job {job.pk} has already finished; there is nothing to cancel.")


def test_htmx_gets_the_partial_with_the_conflicts_message_and_no_notice():
    request = _request(htmx=True)
    reloaded = []
    response = job_action_response(request, Job(3), action=_refuse, done="Cancel requested.", template=OUTCOME,
                                   context=_outcome_context, reload=lambda pk: reloaded.append(pk) or Job(pk),
                                   page=PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="error">Job 3 has already finished; there is nothing to cancel.</p>' in html
    assert "notice" not in html and "Cancel requested." not in html
    assert reloaded == [3]  # the partial shows the job as it is now, read again
    assert list(get_messages(request)) == []  # the outcome is in the partial, not left for the next page


def test_htmx_gets_the_partial_of_the_job_as_read_again_with_the_notice():
    request = _request(htmx=True)
    seen = []

    def context(job, *, notice, error):
        seen.append(job)
        return _outcome_context(job, notice=notice, error=error)

    fresh = Job(4)
    response = job_action_response(request, Job(4), action=lambda job: job, done="Queued again.", template=OUTCOME,
                                   context=context, reload=lambda pk: fresh, page=PAGE)
    html = response.content.decode()
    assert response.status_code == 200 and '<p class="notice">Queued again.</p>' in html
    assert 'class="error"' not in html
    assert seen == [fresh]


def test_a_plain_post_is_redirected_to_the_jobs_page_with_the_outcome_as_a_message():
    request = _request()
    response = job_action_response(request, Job(5), action=lambda job: Job(6), done="Queued again.",
                                   template=OUTCOME, context=_outcome_context, reload=Job, page=PAGE)
    # The job the service returned is the one whose page opens.
    assert response.status_code == 302 and response.url == reverse(PAGE, args=[6])
    assert [(m.level, m.message) for m in get_messages(request)] == [(messages.SUCCESS, "Queued again.")]


def test_a_plain_post_that_conflicts_is_redirected_with_the_reason_as_an_error():
    request = _request()
    response = job_action_response(request, Job(7), action=_refuse, done="Cancel requested.", template=OUTCOME,
                                   context=_outcome_context, reload=Job, page=PAGE)
    assert response.status_code == 302 and response.url == reverse(PAGE, args=[7])
    assert [(m.level, m.message) for m in get_messages(request)] == [
        (messages.ERROR, "Job 7 has already finished; there is nothing to cancel.")]


def test_a_page_with_plain_forms_is_always_redirected_to_even_from_htmx():
    # Evaluation's run page: its buttons are plain forms and its status partial carries no outcome.
    for htmx in (False, True):
        request = _request(htmx=htmx)
        response = job_action_redirect(request, Job(8), action=_refuse, done="Cancel requested.", page=PAGE)
        assert response.status_code == 302 and response.url == reverse(PAGE, args=[8])
        assert [(m.level, m.message) for m in get_messages(request)] == [
            (messages.ERROR, "Job 8 has already finished; there is nothing to cancel.")]
    request = _request()
    job_action_redirect(request, Job(9), action=lambda job: job, done="Cancel requested.", page=PAGE)
    assert [(m.level, m.message) for m in get_messages(request)] == [(messages.SUCCESS, "Cancel requested.")]


def test_the_pages_own_polling_reloads_the_page_once_the_job_has_ended():
    asked = []

    def context():
        asked.append(True)
        return {"notice": "", "action_error": ""}

    ended = job_status_response(_request("get", htmx=True, query="?polling=1"), Job(1, is_finished=True),
                                template=OUTCOME, context=context)
    assert ended.status_code == 200 and ended.headers["HX-Refresh"] == "true"
    assert asked == []  # nothing is rendered for a page about to be reloaded
    for request, job in [(_request("get", htmx=True, query="?polling=1"), Job(1)),  # still running
                         (_request("get", htmx=True), Job(1, is_finished=True)),  # asked for by the page itself
                         (_request("get", query="?polling=1"), Job(1, is_finished=True))]:  # not htmx
        response = job_status_response(request, job, template=OUTCOME, context=context)
        assert response.status_code == 200 and "HX-Refresh" not in response.headers
    assert len(asked) == 3


def test_an_admin_action_says_per_job_what_was_done_or_why_not():
    def cancel(job):
        if job.pk == 2:
            raise InvalidInput("Run 2 has already finished.")

    request = _request()
    each_job(admin.site.get_model_admin(TrainingRun), request, [Job(1), Job(2), Job(3)], cancel,
             "Run %(id)d: cancel requested.")
    assert [(m.level, m.message) for m in get_messages(request)] == [
        (messages.SUCCESS, "Run 1: cancel requested."),
        (messages.WARNING, "Run 2 has already finished."),  # a warning: the other runs went on
        (messages.SUCCESS, "Run 3: cancel requested."),
    ]
