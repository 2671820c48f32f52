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
        self.waiter: _Waiter | None = None

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
        if self.waiter is None:
            self.waiter = _Waiter(self._open())
        return self.waiter.wait(seconds)

    def _locked(self, timeout: float) -> OperationalError:
        # The words SQLite uses, so that crossfeed/busy.py answers 503 + Retry-After as for a busy database.
        return OperationalError(f"database is locked (no write lock on {self.path} within {timeout:g} s)")

    def release(self) -> None:
        fd, self.held_fd = self.held_fd, None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
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


class _Waiter:
    """Blocks on the flock for the callers of one WriteLock, which reach it one at a time (behind the thread lock),
    so that they can stop waiting: flock itself cannot time out. The thread holds a descriptor of its own, is
    started once per process and kept (starting one per wait was 5.8 % of busy workers' py-spy samples). When the
    flock comes free the kernel wakes it; it hands the lock to the caller still waiting, or, if that caller gave up,
    lets go of it at once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.cond = threading.Condition()
        self.wanted = False  # a caller is waiting
        self.handed = False  # the thread got the lock for that caller, who has not taken it yet
        threading.Thread(target=self._run, name="sqlite-write-lock-wait", daemon=True).start()

    def wait(self, seconds: float) -> int | None:
        """The descriptor that holds the lock, or None when `seconds` pass first."""
        with self.cond:
            self.wanted = True
            self.cond.notify_all()
            try:
                self.cond.wait_for(lambda: self.handed, timeout=max(seconds, 0.0))
            except BaseException:  # e.g. gunicorn's timeout in the middle of the wait: hold nothing on the way out
                if self.handed:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                self.wanted = self.handed = False
                raise
            got, self.wanted, self.handed = self.handed, False, False
            return self.fd if got else None

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.wanted and not self.handed)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            with self.cond:
                if self.wanted:
                    self.handed = True
                    self.cond.notify_all()
                    continue
            fcntl.flock(self.fd, fcntl.LOCK_UN)  # the caller gave up while we waited


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
