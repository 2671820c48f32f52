"""crossfeed.db.postgresql: the health check of a persistent connection asks its socket before it asks the server.

Runs on PostgreSQL only (tests/test_postgres.py runs it in its child on a private cluster); skipped on SQLite.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from tests.round_trips import RoundTrips

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgresql_with_persistent_connections():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL backend test (tests/test_postgres.py runs it on a private cluster)")
    if connection.pool is not None:
        pytest.skip("DB_POOL=1: the pool checks its connections itself")
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]


def new_request() -> None:
    """What Django does when a request starts (request_started): the next statement first checks the connection."""
    close_old_connections()


def test_a_healthy_connection_is_checked_without_a_round_trip(tmp_path):
    connection.ensure_connection()
    with RoundTrips(tmp_path) as trips:
        new_request()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert trips.count() == 1  # the statement; before: SELECT 1 of the health check, then the statement


def test_a_connection_the_server_closed_is_replaced_before_a_request_uses_it():
    connection.ensure_connection()
    closed_pid = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, password=connection.settings_dict["PASSWORD"] or None,
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [closed_pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [closed_pid]).fetchone():
            assert time.monotonic() < deadline, "the terminated backend did not go away"
            time.sleep(0.05)
    new_request()
    with connection.cursor() as cursor:  # no OperationalError: the check saw the closed socket and reconnected
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != closed_pid
