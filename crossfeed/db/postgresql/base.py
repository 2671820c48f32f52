"""PostgreSQL: Django's backend, with a health check that asks the connection's socket before it asks the server.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before each request's first statement with `SELECT 1`:
a round trip. Under load that round trip was the costliest of a request: the worker waits for the server's backend
process to be scheduled and answer, then for its own turn on a CPU, and a py-spy profile of the web workers at 64
annotators found a quarter of their samples in that wait (docs/benchmarks.md, "PostgreSQL round trips").

The check exists for a connection the server has closed: a restart, a failover, an idle timeout. A server that
closes a connection first sends the client its reason (an ErrorResponse such as "terminating connection due to
administrator command"), then end-of-file, so the socket becomes readable; the socket of a healthy idle connection
has nothing to read, since nothing was asked. A zero-timeout poll of the socket tells the two apart with one system
call. When there is something to read, `SELECT 1` decides, as before: it reads what the server sent and fails on a
closed connection, which Django then replaces. (A connection cut without a word, a network partition, looks healthy
to both checks until a statement times out.)
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


def nothing_to_read(psycopg_connection) -> bool:
    """True when the server has sent nothing on this idle connection: it is open, as far as can be told unasked."""
    try:
        poller = select.poll()
        poller.register(psycopg_connection.fileno(), select.POLLIN)
    except (OSError, ValueError, base.Database.Error):
        return False  # no socket any more
    return not poller.poll(0)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is not None and not self.connection.closed and nothing_to_read(self.connection):
            return True
        return super().is_usable()
