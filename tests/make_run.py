"""`make run`'s processes for a test: bin/serve (supervisord, gunicorn, the fast and accelerator worker lanes) or one
lane's worker, on the test database file and media folder, on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from django.conf import settings
from django.db import connection

from bench.annotate_load import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120  # two busy cores: supervisord, gunicorn and two workers import Django at the same time


def served_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of processes that share this test's database file and media folder."""
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "staticfiles").mkdir(exist_ok=True)  # whitenoise warns in every process when STATIC_ROOT is missing
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "crossfeed.settings", "CROSSFEED_VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
            "CROSSFEED_MEDIA_ROOT": str(settings.MEDIA_ROOT), "WEB_WORKERS": "1", "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1", **extra}


def healthz(port: int, timeout: float = 5) -> int:
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)) as client:
        client.request("GET", "/healthz")
        return client.getresponse().status


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def descendants(self) -> list[psutil.Process]:
        with suppress(psutil.Error):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def lane_worker(self, lane: str) -> psutil.Process | None:
        return next((p for p in self.descendants() if _argv_has(p, ["crossfeed_worker", "--lane", lane])), None)

    def web_master(self) -> psutil.Process | None:
        supervisord = next((p for p in self.descendants() if _argv_has(p, ["supervisord"])), None)
        if supervisord is None:
            return None
        return next((p for p in supervisord.children() if _argv_has(p, ["gunicorn"])), None)


def _argv_has(process: psutil.Process, words: list[str]) -> bool:
    with suppress(psutil.Error):
        argv = " ".join(process.cmdline())
        return all(word in argv for word in words)
    return False


@contextmanager
def make_run(env: dict[str, str], log: Path) -> Iterator[Served]:
    """bin/serve, as `make run` starts it after its set-up steps, until /healthz answers; stopped with SIGTERM (as
    Ctrl-C does) on the way out, and anything of it still alive then is killed."""
    port = free_port()
    with log.open("ab") as output:  # append: supervisord and bash both write to it
        process = subprocess.Popen([str(ROOT / "bin" / "serve")], cwd=ROOT, env={**env, "HOST": "127.0.0.1",
                                   "PORT": str(port)}, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    served = Served(process, port, log)
    everything: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"bin/serve exited with {process.returncode}:\n{served.log_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /healthz within {START_TIMEOUT_S} s:\n{served.log_text()[-3000:]}"
            with suppress(OSError):
                if healthz(port, timeout=2) == 200 and served.lane_worker("fast") and served.lane_worker(
                        "accelerator"):
                    break
            time.sleep(0.3)
        yield served
    finally:
        everything = served.descendants()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
        for leftover in everything + served.descendants():
            with suppress(psutil.Error):
                leftover.kill()


def lane_worker_command(lane: str, *options: str) -> list[str]:
    return [sys.executable, "manage.py", "crossfeed_worker", "--lane", lane, "--no-startup-delay", *options]


def wait_for(check, *, timeout: float, message: str, every: float = 0.2):
    """Poll `check` until it returns something true; that value, or an AssertionError with `message`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, message() if callable(message) else message
        time.sleep(every)
