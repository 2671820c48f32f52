"""Statements per annotator request: `next` and `submit` through the WSGI application, as a gunicorn worker serves
them (request_started / request_finished included, so the connection is taken from the pool, checked and given
back as in production).

On PostgreSQL every statement is a round trip to the server, and the server's CPU went to statements, not rows
(docs/benchmarks.md, "PostgreSQL round trips"): they are counted on the wire (tests/round_trips.py), BEGIN, COMMIT
and the pool's connection check included. On SQLite there is no wire; Django's own log of the statements counts
them. tests/test_postgres.py runs this file on a private PostgreSQL cluster.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.services.people import annotator_create
from tests.conftest import PASSWORD, item_line, new_key
from tests.round_trips import RoundTrips

pytestmark = pytest.mark.django_db(transaction=True)

# Most round trips one request may take, warm (the annotator's languages cached, statements prepared). Before the
# statements were merged (sql.lease_at_once, sql.judgment_create, sql.lease_state, one read of the item and its
# responses) and the health check looked at the socket first (crossfeed/db/postgresql), PostgreSQL took 12 for
# each, and SQLite ran 11 statements for a `next` and 10 for a `submit`; then 3 and 4, until `next` read the leased
# item with its lease (sql.lease_at_once's with_item) and `submit` its replay lookup, item and response ids in one
# statement (sql.judging_context). With DB_POOL=1 the pool's own check of the connection it hands out adds one.
MOST = {
    "postgresql": {"next": 2, "submit": 2},
    "sqlite": {"next": 8, "submit": 8},
}
WARM_ROUNDS = 8  # psycopg prepares a statement at its 6th execution (DB_PREPARE_THRESHOLD=5): one extra round trip
COUNTED_ROUNDS = 3


def call(application, method: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
               "HTTP_AUTHORIZATION": f"Token {token}"}
    status: list[str] = []
    result = application(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        return int(status[0].split()[0]), b"".join(result)
    finally:
        result.close()  # request_finished: the connection goes back to the pool (or stays, CONN_MAX_AGE)


@pytest.fixture
def rounds(campaign, import_items, tmp_path):
    """A function that runs n annotator rounds (next, then submit) and returns the statements of each request."""
    import_items(campaign, [item_line(f"rt-{index}", n=4) for index in range(2 * (WARM_ROUNDS + COUNTED_ROUNDS))])
    _profile, token = annotator_create(username="roundtrip", password=PASSWORD, native_languages=["ta"],
                                       reading_languages=["sw"])
    application = WSGIHandler()
    connection.close()  # as in a gunicorn worker: each request takes its own connection
    if getattr(connection, "pool", None) is not None:
        # A fresh pool, as a worker process starts with: after the threaded tests it holds several connections and
        # hands them out in turn, each preparing its statements on its own (psycopg prepares per connection), so a
        # warm count would depend on which tests ran before.
        connection.close_pool()
    # Traced from the first request on, across requests: the pool's check of a connection it hands out comes before
    # Django sees the connection, and is counted because the connection is already traced by then.
    trips = RoundTrips(tmp_path) if connection.vendor == "postgresql" else None

    def counted(method: str, path: str, body: bytes = b"") -> tuple[int, bytes, int]:
        if trips is not None:
            before = trips.count()
            status, payload = call(application, method, path, str(token), body)
            return status, payload, trips.count() - before
        with CaptureQueriesContext(connection) as queries:
            status, payload = call(application, method, path, str(token), body)
        return status, payload, len(queries.captured_queries)

    def run(n: int) -> list[dict[str, int]]:
        counts = []
        for _round in range(n):
            status, payload, next_count = counted("GET", f"/api/v1/campaigns/{campaign.id}/next/")
            assert status == 200, payload
            item = json.loads(payload)["item"]
            ranks = {str(response["id"]): rank for rank, response in enumerate(item["responses"], start=1)}
            body = json.dumps({"ranks": ranks, "idempotency_key": new_key()}).encode()
            status, payload, submit_count = counted("POST", f"/api/v1/items/{item['id']}/judgments/", body)
            assert status == 201, payload
            counts.append({"next": next_count, "submit": submit_count})
        return counts

    if trips is None:
        yield run
        return
    with trips:
        yield run


def test_next_and_submit_take_few_round_trips(rounds):
    rounds(WARM_ROUNDS)
    counted = rounds(COUNTED_ROUNDS)
    pool_check = 1 if getattr(connection, "pool", None) is not None else 0
    for kind in ("next", "submit"):
        worst = max(counts[kind] for counts in counted)
        assert worst <= MOST[connection.vendor][kind] + pool_check, \
            f"{kind} on {connection.vendor}: {[counts[kind] for counts in counted]}"
