"""Round trips to PostgreSQL, counted on the wire: libpq's protocol trace of every connection Django opens.

A round trip is a message after which the client waits for the server's answer: a simple-protocol Query (psycopg
sends BEGIN, COMMIT and client-side-bound statements that way) or the Sync that ends an extended-protocol
Parse/Bind/Execute (server-side binding, prepared statements). The trace sees what Django's `connection.queries`
does not: BEGIN, COMMIT, the health check's `SELECT 1`, a pool's connection check.

    with RoundTrips(folder) as trips:
        ...                # requests; every connection Django opens (or takes from its pool) is traced
        trips.count()      # round trips so far
"""

from __future__ import annotations

import os
from pathlib import Path

from django.db.backends.signals import connection_created
from psycopg import pq

# The frontend messages that end a request and wait for ReadyForQuery.
WAITING_MESSAGES = ("Query", "Sync")


class RoundTrips:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.traced: dict[int, tuple[object, int, Path]] = {}  # id(pgconn): (pgconn, fd, trace file)

    def __enter__(self) -> RoundTrips:
        from django.db import connection

        connection_created.connect(self._created, weak=False)
        if connection.vendor == "postgresql" and connection.connection is not None:
            self.attach(connection.connection)
        return self

    def __exit__(self, *exc) -> None:
        connection_created.disconnect(self._created)
        for pgconn, fd, _path in self.traced.values():
            if getattr(pgconn, "_pgconn_ptr", True):  # a closed connection has no trace left to end
                pgconn.untrace()
            os.close(fd)

    def _created(self, sender, connection, **kwargs) -> None:
        if connection.vendor == "postgresql":
            self.attach(connection.connection)

    def attach(self, psycopg_connection) -> None:
        pgconn = psycopg_connection.pgconn
        if id(pgconn) in self.traced:
            return
        path = self.folder / f"trace-{len(self.traced)}.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self.traced[id(pgconn)] = (pgconn, fd, path)

    def count(self) -> int:
        total = 0
        for _pgconn, _fd, path in self.traced.values():
            for line in path.read_text(errors="replace").splitlines():
                fields = line.split("\t")
                if len(fields) > 2 and fields[0] == "F" and fields[2] in WAITING_MESSAGES:
                    total += 1
        return total
