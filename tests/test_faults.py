"""Faults a deployment meets: the web server killed mid-load, a client retrying after a lost answer, the task
worker killed mid-export, and the SQLite database locked by another writer.

Each test runs the real processes (gunicorn started with bin/serve's config file, `manage.py db_worker`) against a file
SQLite database of its own, on 127.0.0.1 only, with a few clients: the machine that runs the suite has two cores.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from annotation.models import Item, JobStatus, Judgment, Response
from annotation.services.campaigns import campaign_create
from annotation.services.exports import export_create, export_folder, export_retry, exports_fail_stale, exports_root
from annotation.services.imports import items_import
from bench.annotate_load import Connection, free_port, gunicorn_command, integrity, prepare
from tests.conftest import item_line, jsonl

ROOT = Path(__file__).resolve().parent.parent
WEB_WORKERS = 2  # bin/serve's WEB_WORKERS knob: two cores here, and the load is a few clients
START_TIMEOUT_S = 60


# --- processes ------------------------------------------------------------------------------------------------


def server_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
           "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **extra}
    env.pop("DATABASE_URL", None)  # the file database in var_dir, whatever the suite itself runs on
    return env


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    """gunicorn with bin/serve's config file, in a process group of its own so that one signal reaches every worker."""
    process = subprocess.Popen(gunicorn_command(port, "--workers", str(WEB_WORKERS)), cwd=ROOT, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode} while starting")
        try:
            if get(port, "/healthz", timeout=2)[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    kill_group(process)
    raise AssertionError(f"gunicorn did not answer /healthz within {START_TIMEOUT_S} s")


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def serving(env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = start_gunicorn(env, port)
    try:
        yield port
    finally:
        kill_group(process, signal.SIGTERM)


def django_child(env: dict[str, str], code: str) -> object:
    """Run `code` in a child process with Django set up for `env`; it prints one JSON value on its last line."""
    script = f"import json, django\ndjango.setup()\n{code}"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- a blocking HTTP client with headers (the bench's asyncio client returns only status and body) ----------------


def request(port: int, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
            timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)) as connection:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def get(port: int, path: str, **options) -> tuple[int, dict[str, str], bytes]:
    return request(port, "GET", path, **options)


def token_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def judgment_body(item: dict, key: str) -> bytes:
    ids = [response["id"] for response in item["responses"]]
    ranks = {str(response_id): rank for rank, response_id in enumerate(ids, start=1)}
    return json.dumps({"ranks": ranks, "idempotency_key": key}).encode()


def lease(port: int, campaign: int, token: str) -> dict:
    status, _, body = get(port, f"/api/v1/campaigns/{campaign}/next/", headers=token_auth(token))
    assert status == 200, (status, body[:300])
    return json.loads(body)["item"]


def submit(port: int, item: dict, token: str, key: str, **options) -> tuple[int, dict[str, str], bytes]:
    headers = {**token_auth(token), "Content-Type": "application/json"}
    return request(port, "POST", f"/api/v1/items/{item['id']}/judgments/", headers=headers,
                   body=judgment_body(item, key), **options)


def judgment_rows(database: Path) -> list[tuple[int, int, str]]:
    """(judgment id, item id, idempotency key) of every stored submission, read straight from the file."""
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute(
            "SELECT j.id, j.item_id, s.idempotency_key FROM annotation_judgment j "
            "JOIN annotation_judgmentsubmission s ON s.judgment_id = j.id ORDER BY j.id"
        ).fetchall()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict:
    """A migrated, seeded file database (bench.annotate_load's seed: k = 3, sw→ta items, token annotators)."""
    var_dir = tmp_path_factory.mktemp("faults-var")
    (var_dir / "staticfiles").mkdir()  # whitenoise warns in every process when STATIC_ROOT is missing
    env = server_env(var_dir)
    campaign, tokens = prepare(env, 60, 8)
    return {"env": env, "var_dir": var_dir, "database": var_dir / "crossfeed.sqlite3", "campaign": campaign,
            "tokens": tokens}


def copy_database(prepared: dict, var_dir: Path) -> dict:
    """A private copy of the prepared database (SQLite's backup API: the WAL's pages come along)."""
    (var_dir / "staticfiles").mkdir(parents=True, exist_ok=True)
    database = var_dir / "crossfeed.sqlite3"
    with closing(sqlite3.connect(prepared["database"])) as source, closing(sqlite3.connect(database)) as target:
        source.backup(target)
    return {**prepared, "env": server_env(var_dir), "var_dir": var_dir, "database": database}


# --- 1. the web server killed and restarted under load ---------------------------------------------------------


class LoadRecord:
    def __init__(self) -> None:
        self.acknowledged: dict[str, int] = {}  # idempotency key -> the judgment id the server answered with
        self.outcomes: dict[str, int] = {}
        self.connection_errors = 0
        self.retried_submits = 0
        self.submits_in_flight = 0
        self.unexpected: list[tuple[str, int, bytes]] = []


async def call(connection: Connection, method: str, path: str, headers: dict[str, str], body: bytes,
               record: LoadRecord, deadline: float) -> tuple[int, bytes]:
    """Send until an answer comes back; after a connection error, reconnect and send the very same bytes again."""
    while True:
        try:
            return await asyncio.wait_for(connection.request(method, path, headers, body), timeout=30)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, TimeoutError):
            record.connection_errors += 1
            await connection.close()
            assert time.monotonic() < deadline, f"{method} {path}: no answer before the deadline"
            await asyncio.sleep(0.05)


async def annotate_until(port: int, campaign: int, token: str, record: LoadRecord, stop: asyncio.Event,
                         deadline: float) -> None:
    connection = Connection(port)
    auth = token_auth(token)
    try:
        while not stop.is_set():
            status, body = await call(connection, "GET", f"/api/v1/campaigns/{campaign}/next/", auth, b"", record,
                                      deadline)
            if status == 204:
                return
            if status != 200:
                record.unexpected.append(("next", status, body[:300]))
                continue
            item = json.loads(body)["item"]
            key = uuid.uuid4().hex
            payload = judgment_body(item, key)
            errors_before = record.connection_errors
            record.submits_in_flight += 1
            # The loop does not stop between sending a judgment and seeing it acknowledged: every stored judgment
            # must end up acknowledged, or the comparison with the database below would be unfair.
            status, body = await call(connection, "POST", f"/api/v1/items/{item['id']}/judgments/",
                                      {**auth, "Content-Type": "application/json"}, payload, record, deadline)
            record.submits_in_flight -= 1
            if record.connection_errors > errors_before:
                record.retried_submits += 1
            if status in (200, 201):
                answer = json.loads(body)
                record.acknowledged[key] = answer["id"]
                record.outcomes[answer["outcome"]] = record.outcomes.get(answer["outcome"], 0) + 1
            else:
                record.unexpected.append(("submit", status, body[:300]))
    finally:
        await connection.close()


async def load_with_restarts(env: dict[str, str], port: int, campaign: int, tokens: list[str], *, kill_after: int,
                             stop_at: int, max_kills: int = 3) -> tuple[LoadRecord, int]:
    """Kill the server (SIGKILL to the group) while a judgment is in flight, restart it, and again if no judgment
    had to be sent twice (the kill fell between two requests); then run on until `stop_at` acknowledgements."""
    record, stop = LoadRecord(), asyncio.Event()
    deadline = time.monotonic() + 120
    server = {"process": await asyncio.to_thread(start_gunicorn, env, port)}
    kills = 0

    async def controller() -> None:
        nonlocal kills
        threshold = kill_after
        while kills < max_kills and (kills == 0 or record.retried_submits == 0):
            while len(record.acknowledged) < threshold or not record.submits_in_flight:
                await asyncio.sleep(0.002)
            # Master and workers die at once with requests in flight: no graceful shutdown, no answer sent.
            await asyncio.to_thread(kill_group, server["process"])
            kills += 1
            await asyncio.sleep(0.3)
            server["process"] = await asyncio.to_thread(start_gunicorn, env, port)
            threshold = len(record.acknowledged) + 4
        while len(record.acknowledged) < stop_at:
            await asyncio.sleep(0.005)
        stop.set()

    try:
        clients = [annotate_until(port, campaign, token, record, stop, deadline) for token in tokens]
        await asyncio.wait_for(asyncio.gather(controller(), *clients), timeout=deadline - time.monotonic())
    finally:
        await asyncio.to_thread(kill_group, server["process"], signal.SIGTERM)
    return record, kills


def test_it_loses_no_acknowledged_judgment_when_the_server_is_killed_under_load(prepared, tmp_path):
    own = copy_database(prepared, tmp_path / "var")
    record, kills = asyncio.run(
        load_with_restarts(own["env"], free_port(), own["campaign"], own["tokens"][:4], kill_after=10, stop_at=24)
    )

    assert record.unexpected == [], "only 200/201/204 are expected, never a 5xx, a 409 or a 400"
    assert record.connection_errors > 0, "the kills were not felt by any client"
    assert record.retried_submits > 0, f"in {kills} kill(s), no judgment was ever cut off and sent again"
    stored = {key: judgment_id for judgment_id, _item, key in judgment_rows(own["database"])}
    # Every acknowledged judgment is in the database, under the key the client sent first: a retry reused it.
    missing = {key: judgment_id for key, judgment_id in record.acknowledged.items() if stored.get(key) != judgment_id}
    assert not missing, f"acknowledged but not stored: {missing}"
    # And nothing else: no judgment the client never saw acknowledged, none stored twice under two keys.
    assert len(stored) == len(set(record.acknowledged.values())) == len(record.acknowledged)
    checks = integrity(own["env"], len(record.acknowledged))
    assert checks["ok"], checks
    print(f"{kills} kill(s); acknowledged {len(record.acknowledged)} ({record.outcomes}), connection errors "
          f"{record.connection_errors}, submits retried {record.retried_submits}")


# --- 2. the task worker killed in the middle of an export -------------------------------------------------------

EXPORT_ITEMS = 2000  # building the export takes about a second; fewer than one chunk (5000), so one heartbeat


def seed_judged_campaign(admin, annotators):
    """A campaign whose items each hold two judgments; rows are inserted in bulk, the export is what is tested."""
    campaign = campaign_create(name="Killed worker", created_by=admin, overlap=2)
    items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line(f"kw-{n}", n=6) for n in range(EXPORT_ITEMS)])))
    responses: dict[int, list[int]] = {}
    for item_id, response_id in Response.objects.filter(item__campaign=campaign).values_list("item_id", "id"):
        responses.setdefault(item_id, []).append(response_id)
    Judgment.objects.bulk_create(
        Judgment(item_id=item_id, annotator=annotator, ranks={str(r): rank for rank, r in enumerate(ids, start=1)})
        for item_id, ids in responses.items() for annotator in annotators
    )
    Item.objects.filter(campaign=campaign).update(judgment_count=len(annotators))
    return campaign


def db_worker(*options: str) -> list[str]:
    return [sys.executable, "manage.py", "db_worker", "--queue-name", "exports", "--no-startup-delay", *options]


@pytest.mark.django_db(transaction=True)
def test_it_fails_an_export_whose_worker_was_killed_and_runs_it_again_on_retry(admin_user, make_annotator, settings,
                                                                               tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    campaign = seed_judged_campaign(admin_user, [make_annotator(f"kw{n}", ["ta"], ["sw"]) for n in range(2)])
    database = Path(connection.settings_dict["NAME"])
    # The worker reads the test database itself (a file: settings' TEST NAME) and writes into the same media.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crossfeed.settings", "DATABASE_URL": f"sqlite:///{database}",
           "CROSSFEED_MEDIA_ROOT": str(settings.MEDIA_ROOT), "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(db_worker("--interval", "0.1"), cwd=ROOT, env=env, start_new_session=True)
    watcher = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        # export_create commits (a transactional test), and only then queues the task: on_commit.
        export = export_create(campaign=campaign, created_by=admin_user, min_judgments=2)
        deadline = time.monotonic() + 60
        status = "queued"
        while status == "queued" and time.monotonic() < deadline:
            time.sleep(0.002)  # 2 ms late at most, against about a second of work; no busy loop against the worker
            (status,) = watcher.execute("SELECT status FROM annotation_export WHERE id = ?", [export.pk]).fetchone()
        assert status == "running", f"the worker did not start the export within 60 s ({status})"
        # Take the write lock at once: the worker can go on reading and writing files, but its next database
        # write (the heartbeat after the chunk) waits on the lock, so it is surely mid-job when it is killed.
        watcher.execute("BEGIN IMMEDIATE")
        (status,) = watcher.execute("SELECT status FROM annotation_export WHERE id = ?", [export.pk]).fetchone()
        assert status == "running", "the export finished before the lock was taken: raise EXPORT_ITEMS"
        partials = list(exports_root().glob(f".{export.pk}.partial-*"))
        deadline = time.monotonic() + 30
        while not partials and time.monotonic() < deadline:
            time.sleep(0.01)
            partials = list(exports_root().glob(f".{export.pk}.partial-*"))
        time.sleep(0.3)  # let it write some rows into the partial files before it dies
        kill_group(worker)
    finally:
        if worker.poll() is None:
            kill_group(worker)
        watcher.close()  # ends the lock (an open transaction is rolled back on close)

    assert worker.returncode == -signal.SIGKILL
    assert partials and all(path.exists() for path in partials), "the killed worker left its partial folder"
    export.refresh_from_db()
    assert export.status == JobStatus.RUNNING
    # django-tasks-db's own row of the task stays "running" for ever after a SIGKILL (nothing marks it), which is
    # why the product shows and recovers our Export row, not the task row.
    assert DBTaskResult.objects.get().status == "RUNNING"

    assert exports_fail_stale(stale_after=timedelta(0)) == 1
    export.refresh_from_db()
    assert export.status == JobStatus.FAILED
    assert "stopped responding" in export.error
    assert not any(path.exists() for path in partials), "the partial folder was removed"
    assert not export_folder(export).exists(), "nothing was published"

    export = export_retry(export=export)
    assert export.status == JobStatus.QUEUED
    # --batch: run what is queued, then exit.
    done = subprocess.run(db_worker("--batch"), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED, export.error
    assert export.attempts == 2
    assert export.rows > 0
    published = sorted(path.name for path in export_folder(export).iterdir())
    assert published == sorted([f["name"] for f in export.files] + ["README.md"])
    assert not list(exports_root().glob(f".{export.pk}.partial-*"))


# --- 3. a client that never saw the answer sends the judgment again ---------------------------------------------

BUSY_TIMEOUT_S = 3  # SQLITE_BUSY_TIMEOUT of the shared server: long enough to outwait a brief lock, short to test


@pytest.fixture(scope="module")
def server(prepared) -> Iterator[dict]:
    with serving({**prepared["env"], "SQLITE_BUSY_TIMEOUT": str(BUSY_TIMEOUT_S)}) as port:
        yield {**prepared, "port": port}


def stored_for(database: Path, key: str, deadline_s: float = 30) -> list[tuple[int, int, str]]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        rows = [row for row in judgment_rows(database) if row[2] == key]
        if rows:
            return rows
        time.sleep(0.05)
    return []


def test_it_replays_a_judgment_whose_answer_the_client_never_saw(server):
    port, token = server["port"], server["tokens"][0]
    item = lease(port, server["campaign"], token)
    key = uuid.uuid4().hex
    body = judgment_body(item, key)
    # Send the request and hang up without reading the answer, as a client whose timeout fired does.
    head = (f"POST /api/v1/items/{item['id']}/judgments/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as hung_up:
        hung_up.sendall(head.encode() + body)
    first = stored_for(server["database"], key)
    assert len(first) == 1, "the server did not store the judgment whose answer nobody read"

    status, _, answer = submit(port, item, token, key)
    assert status == 200, answer
    assert json.loads(answer) == {"id": first[0][0], "outcome": "replayed", "revision": 1}
    assert [row for row in judgment_rows(server["database"]) if row[1] == item["id"] and row[2] == key] == first


def test_it_stores_one_judgment_when_the_same_key_arrives_twice_at_once(server):
    port, token = server["port"], server["tokens"][1]
    item = lease(port, server["campaign"], token)
    key = uuid.uuid4().hex
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        barrier.wait(timeout=10)
        status, _, body = submit(port, item, token, key)
        answers.append((status, json.loads(body)))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _ in answers) == [200, 201], answers
    assert len({body["id"] for _, body in answers}) == 1
    assert {body["outcome"] for _, body in answers} == {"created", "replayed"}
    assert len(stored_for(server["database"], key)) == 1


# --- 4. the database locked by another writer ---------------------------------------------------------------------


@contextmanager
def write_lock(database: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock from another connection (in WAL mode EXCLUSIVE blocks writers, not readers)."""
    connection = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def in_threads(*calls) -> list[tuple[float, tuple]]:
    """Run the calls at once; (seconds taken, result) of each, in order."""
    results: list[tuple[float, tuple] | None] = [None] * len(calls)

    def run(index: int, call) -> None:
        start = time.monotonic()
        outcome = call()
        results[index] = (time.monotonic() - start, outcome)

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(result is not None for result in results), "a request did not finish"
    return results  # type: ignore[return-value]


class Background(threading.Thread):
    """Run a call on a thread; join() returns its result."""

    def __init__(self, call) -> None:
        super().__init__(daemon=True)
        self.call, self.result = call, None

    def run(self) -> None:
        self.result = self.call()

    def join(self, timeout: float | None = 60):
        super().join(timeout)
        assert not self.is_alive(), "the requests did not finish"
        return self.result


def test_it_waits_out_a_brief_write_lock(server):
    port, campaign = server["port"], server["campaign"]
    submitter, newcomer = server["tokens"][2], server["tokens"][3]
    item = lease(port, campaign, submitter)
    key = uuid.uuid4().hex
    with write_lock(server["database"]):
        pending = Background(lambda: in_threads(
            lambda: submit(port, item, submitter, key),
            lambda: get(port, f"/api/v1/campaigns/{campaign}/next/", headers=token_auth(newcomer)),
        ))
        pending.start()
        time.sleep(1.5)  # shorter than the busy timeout: the requests queue on the lock, then go through
    (submit_s, (submit_status, _, submit_body)), (next_s, (next_status, _, next_body)) = pending.join()
    assert submit_status == 201, submit_body
    assert next_status == 200, next_body
    assert submit_s > 1.0 and next_s > 1.0, "the requests did not wait for the lock"


def session_cookies(env: dict[str, str], username: str) -> dict[str, str]:
    """Cookies and CSRF header of a logged-in browser session for `username` (made by the server's own code)."""
    session = django_child(env, f"""
from django.contrib.auth import get_user_model
from django.test import Client
client = Client()
client.force_login(get_user_model().objects.get(username={username!r}))
print(json.dumps(client.cookies["sessionid"].value))
""")
    csrf = uuid.uuid4().hex  # any 32 letters and digits: Django compares the header with the cookie
    return {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf}


def test_it_answers_503_with_retry_after_when_the_lock_outlasts_the_busy_timeout(server):
    port, campaign = server["port"], server["campaign"]
    submitter, reader = server["tokens"][4], server["tokens"][5]
    browser = session_cookies(server["env"], "load6")
    item = lease(port, campaign, submitter)
    key = uuid.uuid4().hex
    with write_lock(server["database"]):
        pending = Background(lambda: in_threads(
            lambda: submit(port, item, submitter, key),
            lambda: get(port, f"/api/v1/campaigns/{campaign}/next/", headers=token_auth(reader)),
            lambda: request(port, "POST", f"/campaigns/{campaign}/next/", headers=browser),
        ))
        pending.start()
        results = pending.join(BUSY_TIMEOUT_S + 20)
    for seconds, (status, headers, body) in results:
        assert status == 503, (status, body[:500])
        assert int(headers["retry-after"]) > 0
        assert seconds >= BUSY_TIMEOUT_S - 0.5, "answered before the busy timeout ran out"
    for _, (_, headers, body) in results[:2]:
        assert headers["content-type"] == "application/json"
        assert "busy" in json.loads(body)["detail"]
    page = results[2][1]
    assert page[1]["content-type"].startswith("text/html")
    assert b"busy" in page[2]

    # Nothing was stored by the refused submit; the client's retry with the same key goes through.
    assert [row for row in judgment_rows(server["database"]) if row[2] == key] == []
    status, _, body = submit(port, item, submitter, key)
    assert status == 201, body
    status, _, body = request(port, "POST", f"/campaigns/{campaign}/next/", headers=browser)
    assert status == 200, body[:500]
