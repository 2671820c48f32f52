"""A private, throwaway PostgreSQL cluster for tests: `with throwaway_cluster() as database_url: ...`.

It needs only the server binaries (Debian's `postgresql` package, or `make postgres-binaries`), never a running
server: initdb writes a cluster into a temporary folder, the server listens on a Unix socket in that folder only
(no TCP, so nothing else on the machine can reach it or collide with it), and everything is stopped and deleted
on the way out, even when the body fails. fsync is off: the data is thrown away, so durability buys nothing.

initdb and the server refuse to run as root. As root we run them as the `postgres` system user that Debian's
package creates (through runuser, or su), with the folder handed over to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
DATABASE = "crossfeed"
START_TIMEOUT_S = 60


class PostgresUnavailable(Exception):
    """The machine cannot run a throwaway cluster; the message says why and what to install."""


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin/", path)
    return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()


def find_server_binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres: the newest /usr/lib/postgresql/<version>/bin, else PATH."""
    looked = ["/usr/lib/postgresql/*/bin/initdb"]
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True):
        bindir = Path(initdb).parent
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    looked.append("initdb and pg_ctl on PATH")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Debian links some of them into /usr/local/bin: pg_ctl finds `postgres` beside the real file.
        return Path(os.path.realpath(initdb)).parent
    raise PostgresUnavailable(
        f"PostgreSQL server binaries not found (looked in {', '.join(looked)}); install them with "
        "`make postgres-binaries` (apt-get install postgresql)"
    )


def unprivileged_runner() -> tuple[list[str] | None, pwd.struct_passwd | None]:
    """(how to prefix a command, the user it runs as); (None, None) when we are not root and need nothing."""
    if os.geteuid() != 0:
        return None, None
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and PostgreSQL refuses to run as root; no 'postgres' system user exists to run it "
            "as (Debian's postgresql package creates one), so the PostgreSQL tests cannot start a cluster"
        ) from None
    if shutil.which("runuser"):
        return ["runuser", "-u", SUPERUSER, "--"], account
    if shutil.which("su"):
        return ["su", SUPERUSER, "-s", "/bin/sh", "-c"], account
    raise PostgresUnavailable("running as root, and neither runuser nor su is available to drop to 'postgres'")


def _free_port() -> int:
    # The socket lives in our own folder, so no port can clash; a free TCP number just keeps logs unambiguous.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_cluster(*, database: str = DATABASE) -> Iterator[str]:
    """Start a private cluster, create `database`, yield its DATABASE_URL; stop and delete everything after."""
    bindir = find_server_binaries()
    prefix, account = unprivileged_runner()
    # A short path: a Unix socket's path must stay under ~107 bytes, and TMPDIR can be long.
    root = Path(tempfile.mkdtemp(prefix="cf-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"

    def run(*args: str, timeout: float = START_TIMEOUT_S) -> None:
        command = [str(arg) for arg in args]
        if prefix is not None:
            command = [*prefix, shlex.join(command)] if prefix[0] == "su" else [*prefix, *command]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}\n{server_log}"
            )

    port = _free_port()
    started = False
    url = f"postgres://{SUPERUSER}@{quote(str(sockets), safe='')}:{port}/{database}"
    options = (f"-p {port} -k {shlex.quote(str(sockets))} -c listen_addresses='' -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")

    def start() -> None:
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start",
            timeout=START_TIMEOUT_S + 10)

    def stop() -> None:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop", timeout=40)

    try:
        sockets.mkdir()
        if account is not None:
            for path in (root, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        run(bindir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        started = True  # from here on a half-started server must be stopped too
        start()
        import psycopg

        with psycopg.connect(host=str(sockets), port=port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        _running[url] = (stop, start)
        yield url
    finally:
        _running.pop(url, None)
        try:
            if started and (data / "postmaster.pid").exists():
                stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


_running: dict[str, tuple] = {}


def cluster_outage(database_url: str, seconds: float) -> None:
    """Stop the throwaway cluster of `database_url` (fast: its connections are cut), wait, start it again."""
    import time

    stop, start = _running[database_url]
    stop()
    time.sleep(seconds)
    start()
