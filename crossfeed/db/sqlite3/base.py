"""SQLite with a fair write lock: Django's backend, plus a lock that write transactions queue on before BEGIN.

SQLite lets one writer in at a time. When a second one finds the database locked, SQLite's busy handler sleeps and
tries again, sleeping longer each time (1, 2, 5, 10 … 100 ms), so under load a few unlucky requests lose the race
over and over and wait hundreds of milliseconds while newcomers walk in: the p99 of a busy server is made of them.
Here every transaction (`atomic`, which the SQLite backend starts with BEGIN IMMEDIATE) first takes:

1. a per-process `threading.Lock`, then
2. an exclusive `flock` on `<database>-writelock` beside the database file, shared by every process that opens
   the database through this backend (gunicorn workers, the task worker, management commands). The kernel wakes a
   waiter the moment the holder commits, and releases the lock by itself if the holder's process dies.

Both waits end with the busy timeout (`SQLITE_BUSY_TIMEOUT`): a writer stuck behind a long or hung transaction still
gets "database is locked", which crossfeed/busy.py turns into 503 + Retry-After, rather than waiting forever.

Both are released when the transaction commits or rolls back, or the connection closes. Statements outside a
transaction (autocommit) do not take the lock; they and other programs that write the file are still covered by
SQLite's own busy timeout. Figures before and after: docs/benchmarks.md.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

_locks: dict[tuple[int, str], WriteLock] = {}
_locks_guard = threading.Lock()


class WriteLock:
    """One per process and database file: a thread lock in front of an flock (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.threads = threading.Lock()
        # Opened in this process (never inherited across fork): an flock belongs to the open file description,
        # which forked children would share with their parent.
        self.fd = self._open()
        self.held_fd: int | None = None

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            raise self._locked(timeout)
        try:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.held_fd = self.fd
            except BlockingIOError:
                self.held_fd = self._wait(deadline - time.monotonic())
                if self.held_fd is None:
                    raise self._locked(timeout) from None
        except BaseException:
            self.threads.release()
            raise

    def _wait(self, seconds: float) -> int | None:
        """Block on the flock until it is free (the kernel wakes us at once) or `seconds` pass; the lock's fd, or
        None. flock itself cannot time out, so a helper thread blocks on a descriptor of its own; if we stop
        waiting first, it lets go of the lock as soon as it gets it."""
        fd = self._open()
        got = threading.Event()
        state = {"abandoned": False}
        guard = threading.Lock()

        def block() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if state["abandoned"]:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                    return
                got.set()

        threading.Thread(target=block, name="sqlite-write-lock-wait", daemon=True).start()
        if got.wait(max(seconds, 0.0)):
            return fd
        with guard:
            if got.is_set():
                return fd
            state["abandoned"] = True
        return None

    def _locked(self, timeout: float) -> OperationalError:
        # The words SQLite uses, so that crossfeed/busy.py answers 503 + Retry-After as for a busy database.
        return OperationalError(f"database is locked (no write lock on {self.path} within {timeout:g} s)")

    def release(self) -> None:
        fd, self.held_fd = self.held_fd, None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if fd != self.fd:
                    os.close(fd)
        finally:
            self.threads.release()

    @classmethod
    def for_database(cls, database: str) -> WriteLock:
        # Runs at every BEGIN: a dictionary read on the fast path; the path is resolved (syscalls) only once.
        key = (os.getpid(), database)
        lock = _locks.get(key)
        if lock is None:
            with _locks_guard:
                lock = _locks.get(key)
                if lock is None:
                    lock = _locks[key] = cls(str(Path(database).resolve()) + "-writelock")
        return lock


class DatabaseWrapper(base.DatabaseWrapper):
    _write_lock: WriteLock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if not self.is_in_memory_db():
            lock = WriteLock.for_database(str(self.settings_dict["NAME"]))
            lock.acquire(timeout=float(self.settings_dict["OPTIONS"].get("timeout", 5)))
            self._write_lock = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        lock, self._write_lock = self._write_lock, None
        if lock is not None:
            lock.release()

    def _releasing(self, step):
        """Run COMMIT, ROLLBACK or close, then let the next writer in, whether or not the step succeeded."""
        try:
            return step()
        finally:
            self._release_write_lock()

    def _commit(self):
        return self._releasing(super()._commit)

    def _rollback(self):
        return self._releasing(super()._rollback)

    def _close(self):
        return self._releasing(super()._close)
