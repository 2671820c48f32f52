"""Django's database sessions (settings.SESSION_ENGINE), with the session row read by one written-out statement.

Every request of a signed-in person reads its session; built by the ORM, that read cost 0.4–0.5 ms of Python per
request, a tenth of an annotator's whole submit (docs/benchmarks.md, "Annotators' page path"), against 0.03 ms for
the statement itself. The row, the expiry rule and the encoding are Django's own (django.contrib.sessions.backends.db):
sessions written before this engine keep working, and writes and deletes are Django's unchanged.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if self.session_key is None:  # none sent, or one SessionBase refused as malformed
            return None
        model = self.model
        connection = connections[router.db_for_read(model)]
        query = (f"SELECT session_data FROM {connection.ops.quote_name(model._meta.db_table)} "  # noqa: S608
                 "WHERE session_key = %s AND expire_date > %s")
        with connection.cursor() as cursor:
            cursor.execute(query, [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django's: a new key is made if this session is saved
            return None
        return SimpleNamespace(session_data=row[0])
