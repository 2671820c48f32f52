"""crossfeed.sessions: Django's database sessions, the row read by one written-out statement (issue 16, the
annotators' page path). Same rows, same expiry, same sign-out as django.contrib.sessions.backends.db."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD


def signed_in(user) -> Client:
    client = Client()
    assert client.post(reverse("login"), {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_a_signed_in_request_reads_its_session_row_by_one_short_statement(annotator):
    client = signed_in(annotator)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("home")).status_code == 200
    reads = [query["sql"] for query in queries.captured_queries if "django_session" in query["sql"]]
    assert len(reads) == 1 and reads[0].startswith("SELECT session_data FROM"), reads


def test_an_expired_session_signs_nobody_in(annotator):
    client = signed_in(annotator)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("home")).status_code == 302  # to the login page


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(annotator):
    client = signed_in(annotator)
    copy = Client()
    copy.cookies = client.cookies.__class__(client.cookies)  # the same session cookie, as a second browser would hold
    assert copy.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert copy.get(reverse("home")).status_code == 302


def test_a_session_key_that_is_no_key_signs_nobody_in(client, annotator):
    client.cookies["sessionid"] = "x"  # too short: SessionBase refuses it before any query
    assert client.get(reverse("home")).status_code == 302
    client.cookies["sessionid"] = "a" * 32  # well formed, in no row
    assert client.get(reverse("home")).status_code == 302
