"""The annotators' own path, the browser flow, against the API path on the same server in the same run.

    .venv/bin/python bench/page_flow_bench.py                     # 16 annotators, 20 s per path, 20,000 items
    .venv/bin/python bench/page_flow_bench.py --seconds 8 --items 4000        # the quick variant of `make bench`
    .venv/bin/python bench/page_flow_bench.py --cost [--profile]  # CPU per judged item in process, no server

Annotators do not use the API: their browser signs in, opens the annotation page, whose htmx loads the first item
(POST next), and from then on posts the ranking form and gets the next item's HTML back. Each simulated annotator
here does exactly that over HTTP/1.1 against gunicorn started as `make run` starts it (crossfeed/gunicorn_conf.py,
static files collected as `make run` collects them): GET the login page, POST the login form with its CSRF token,
GET the annotation page, POST next as htmx does, then loop: POST the ranking form as htmx sends it (the HX-*
headers, X-CSRFToken from the page's hx-headers, Origin, the session and CSRF cookies, every field the form has:
csrfmiddlewaretoken, idempotency_key, rendered_at, seconds_spent, one rank per response, flags, comment) and read
the next item's form from the answer. Every `--reload-every` submits it opens the annotation page again (64: the
1.03 requests per judged item the issue counted). It accepts gzip, as browsers do, and decompresses.

The baseline is bench/annotate_load.py's API client (next, then submit, with a token; no gzip, as there) with as
many annotators (other users, same campaign), against the same server, in alternating slices (API, page, API,
page, ...: this shared machine's speed drifts within a minute). Prints one JSON line: submits/s and the p50/p99 of
the page's submit (which stores the judgment and renders the next item) and of the API's next and submit, and page
/ API. The percentiles leave out each client's first request of a slice, as annotate_load.py leaves out its first
round.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotate_load import Tally, free_port, gunicorn, load, percentiles  # noqa: E402

PASSWORD = "bench-page-flow-password"
INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)"')
HX_CSRF = re.compile(r'hx-headers=\'\{"X-CSRFToken": "(?P<token>[^"]+)"\}\'')
SUBMIT_URL = re.compile(r'<form id="judgment-form" method="post" action="(?P<action>[^"]+)"')
RANK_FIELD = re.compile(r'<select name="rank_(?P<id>\d+)"')


class BrowserConnection:
    """One keep-alive HTTP/1.1 connection with a cookie jar, reading the headers a browser needs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        # What the annotator's screen holds: the CSRF token of the page, the item's form, submits since a reload.
        self.csrf, self.since_reload = "", 0
        self.partial: str | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, dict[str, str], str]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(body)}",
                 "Accept-Encoding: gzip, deflate, br, zstd", "Accept-Language: en"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        received: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    self.cookies[morsel.key] = morsel.value
            else:
                received[name] = value
        length = int(received.get("content-length", "0"))
        payload = await self.reader.readexactly(length) if length else b""
        if received.get("content-encoding") == "gzip":
            payload = gzip.decompress(payload)
        if received.get("connection", "").lower() == "close":
            await self.close()
        return status, received, payload.decode("utf-8", "replace")

    def htmx(self, csrf: str, trigger: str) -> dict[str, str]:
        # What htmx 2 adds to its requests, plus what the browser adds to a same-origin POST.
        return {"HX-Request": "true", "HX-Current-URL": f"{self.origin}/", "HX-Target": "workspace",
                "HX-Trigger": trigger, "X-CSRFToken": csrf, "Origin": self.origin, "Accept": "*/*",
                "Content-Type": "application/x-www-form-urlencoded"}

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def form_fields(page: str) -> dict[str, str]:
    return {match["name"]: html.unescape(match["value"]) for match in INPUT.finditer(page)}


async def sign_in(connection: BrowserConnection, username: str) -> None:
    status, _, page = await connection.request("GET", "/accounts/login/")
    if status != 200:
        raise RuntimeError(f"login page answered {status}")
    body = urlencode({"csrfmiddlewaretoken": form_fields(page)["csrfmiddlewaretoken"], "username": username,
                      "password": PASSWORD}).encode()
    status, headers, _ = await connection.request("POST", "/accounts/login/", {
        "Origin": connection.origin, "Content-Type": "application/x-www-form-urlencoded"}, body)
    if status != 302 or "sessionid" not in connection.cookies:
        raise RuntimeError(f"sign-in of {username} answered {status}")


async def open_page(connection: BrowserConnection, campaign: int, tally: Tally, first: bool) -> tuple[str, str]:
    """The annotation page, then the first item as htmx loads it (hx-trigger="load"): (csrf token, item form)."""
    start = time.perf_counter()
    status, _, page = await connection.request("GET", f"/campaigns/{campaign}/annotate/")
    tally.record("page", time.perf_counter() - start, first)
    if status != 200:
        raise RuntimeError(f"annotation page answered {status}")
    csrf = HX_CSRF.search(page)["token"]
    start = time.perf_counter()
    status, _, partial = await connection.request("POST", f"/campaigns/{campaign}/next/",
                                                  connection.htmx(csrf, "workspace"))
    tally.record("next", time.perf_counter() - start, first)
    if status != 200:
        raise RuntimeError(f"next answered {status}")
    return csrf, partial


def ranking_form(partial: str, rng: random.Random) -> tuple[str, bytes] | None:
    """(submit URL, urlencoded body) of the item form in `partial`, filled in as an annotator would."""
    action = SUBMIT_URL.search(partial)
    if action is None:
        return None
    fields = list(form_fields(partial.split('<form class="skip"')[0]).items())
    ids = [match["id"] for match in RANK_FIELD.finditer(partial)]
    ranks = rng.sample(range(1, len(ids) + 1), len(ids))
    for index, response_id in enumerate(ids):
        fields.append((f"rank_{response_id}", str(ranks[index])))
    if rng.random() < 0.1:
        fields.append((f"flag_{ids[0]}", "wrong_language"))
    fields = [(name, str(rng.randint(5, 90)) if name == "seconds_spent" else value) for name, value in fields]
    fields.append(("comment", ""))
    return html.unescape(action["action"]), urlencode(fields).encode()


async def page_annotator(connection: BrowserConnection, campaign: int, deadline: float, tally: Tally,
                         reload_every: int) -> None:
    """One annotator's browser until `deadline`; it carries on in the next slice where it stopped (the item on its
    screen is kept on the connection)."""
    rng = random.Random(f"{connection.cookies.get('sessionid')}{tally.submits}")
    first = True
    try:
        if connection.partial is None:
            connection.csrf, connection.partial = await open_page(connection, campaign, tally, first)
        while time.monotonic() < deadline:
            form = ranking_form(connection.partial, rng)
            if form is None:
                tally.exhausted += 1
                return
            if connection.since_reload >= reload_every:
                connection.csrf, connection.partial = await open_page(connection, campaign, tally, first)
                connection.since_reload = 0
                continue
            start = time.perf_counter()
            status, _, connection.partial = await connection.request(
                "POST", form[0], connection.htmx(connection.csrf, "judgment-form"), form[1])
            tally.record("submit", time.perf_counter() - start, first)
            first = False
            connection.since_reload += 1
            if status == 200 and "Saved. Here is the next item." in connection.partial:
                tally.submits += 1
            else:
                tally.error(f"submit {status}")
                connection.csrf, connection.partial = await open_page(connection, campaign, tally, first)
    except (ConnectionError, OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
        tally.error(f"{type(exc).__name__}: {exc}"[:80])
    finally:
        await connection.close()


async def sign_in_all(connections: list[BrowserConnection], usernames: list[str]) -> None:
    # Everyone signs in before the clock starts: a sign-in is once a day, and its password hash (PBKDF2, ~0.3 s of
    # CPU) for 16 annotators at once would take the first seconds of the run.
    await asyncio.gather(*(sign_in(connection, name) for connection, name in zip(connections, usernames,
                                                                                 strict=True)))


async def page_load(connections: list[BrowserConnection], campaign: int, seconds: float,
                    reload_every: int) -> tuple[Tally, float]:
    tally = Tally()
    tally.latency["page"], tally.first["page"] = [], []
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(page_annotator(connection, campaign, deadline, tally, reload_every)
                           for connection in connections))
    return tally, time.monotonic() - start


def prepare(env: dict[str, str], n_items: int, n_annotators: int) -> tuple[int, list[str], list[str]]:
    """Migrate, collect the static files as `make run` does, seed: (campaign, API tokens, page usernames)."""
    code = f"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)
from bench.page_flow_bench import seed
print(json.dumps(seed({n_items}, {n_annotators})))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    campaign, tokens, usernames = json.loads(done.stdout.strip().splitlines()[-1])
    return campaign, tokens, usernames


def seed(n_items: int, n_annotators: int) -> tuple[int, list[str], list[str]]:
    """annotate_load's campaign and annotators, twice as many: the first half for the API, the second for the page
    (with a password: one hash computed once, the annotators are alike)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from bench.annotate_load import seed as seed_load

    campaign, tokens = seed_load(n_items, 2 * n_annotators)
    page_users = [f"load{n}" for n in range(n_annotators, 2 * n_annotators)]
    get_user_model().objects.filter(username__in=page_users).update(password=make_password(PASSWORD))
    return campaign, tokens[:n_annotators], page_users


def measure(port: int, campaign: int, tokens: list[str], usernames: list[str], args) -> dict:
    """Both paths for args.seconds each, in args.slices alternating slices (API, page, API, page, ...): the speed of
    this shared machine drifts within a minute, and two long phases one after the other took the drift as a
    difference between the paths."""
    connections = [BrowserConnection(port) for _ in usernames]
    asyncio.run(sign_in_all(connections, usernames))
    api, page = Tally(), Tally()
    page.latency["page"], page.first["page"] = [], []
    elapsed = {"api": 0.0, "page": 0.0}
    client = {"api": 0.0, "page": 0.0}
    seconds = args.seconds / args.slices
    runs = (("api", api, lambda: load(port, campaign, tokens, seconds, floor=False)),
            ("page", page, lambda: page_load(connections, campaign, seconds, args.reload_every)))
    for _ in range(args.slices):
        for name, total, run in runs:
            started = time.process_time()
            tally, took = asyncio.run(run())
            client[name] += time.process_time() - started
            elapsed[name] += took
            _add(total, tally)
    api_rate, page_rate = api.submits / elapsed["api"], page.submits / elapsed["page"]
    page_loads = len(page.latency["page"]) + len(page.first["page"])
    return {
        "bench": "page_flow", "annotators": len(usernames), "seconds": args.seconds, "slices": args.slices,
        "reload_every": args.reload_every,
        "page_submits_per_s": round(page_rate, 1), "page_submit": percentiles(page.latency["submit"]),
        "page_load": percentiles(page.latency["page"]), "page_errors": page.errors,
        "page_requests_per_submit": round((page.submits + 2 * page_loads) / max(page.submits, 1), 3),
        "api_submits_per_s": round(api_rate, 1), "api_next": percentiles(api.latency["next"]),
        "api_submit": percentiles(api.latency["submit"]), "api_errors": api.errors,
        "ratio": round(page_rate / api_rate, 2) if api_rate else None, "target": ">= 0.7",
        # The load generator shares the machine with the server: its own CPU per judged item on each path.
        "client_cpu_ms_per_submit": {name: round(client[name] / max(tally.submits, 1) * 1000, 2)
                                     for name, tally in (("page", page), ("api", api))},
    }


def _add(total: Tally, part: Tally) -> None:
    for call, values in part.latency.items():
        total.latency.setdefault(call, []).extend(values)
    for call, values in part.first.items():
        total.first.setdefault(call, []).extend(values)
    total.submits += part.submits
    total.exhausted += part.exhausted
    for kind, count in part.errors.items():
        total.errors[kind] = total.errors.get(kind, 0) + count


def cost(args) -> None:
    """The CPU of one judged item on each path inside Django, as bench/request_cost.py counts it: the WSGI
    application called in this process (no sockets), a page submit (store, then render the next item's HTML) against
    an API round (next, then submit). Steadier than the load figures on a busy machine; `--profile` prints the top
    of a cProfile of the page submits and the queries of one."""
    var_dir = tempfile.mkdtemp(prefix="crossfeed-page-cost-")
    os.environ.update(CROSSFEED_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="crossfeed.settings", LOG_LEVEL="WARNING")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    campaign, tokens, usernames = seed(args.items, 32)
    connections.close_all()
    page, api = InProcess(campaign, usernames), InProcess(campaign, tokens)
    for index in range(len(usernames)):  # warm-up: every annotator's caches filled, as in a running server
        page.page_submit(index)
        api.api_round(index)
    # Blocks of each path in turn: this machine's speed drifts by tens of percent over a minute, so each block of
    # page submits is compared with the API block beside it, and the medians are reported.
    block = 50
    times: dict[str, list[float]] = {"page_submit": [], "api_round": []}
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
    for start in range(0, args.rounds, block):
        for name, step in (("page_submit", page.page_submit), ("api_round", api.api_round)):
            if profile is not None and name == "page_submit":
                profile.enable()
            started = time.process_time()
            for index in range(start, start + block):
                step(index % len(usernames))
            times[name].append((time.process_time() - started) / block * 1000)
            if profile is not None:
                profile.disable()
    figures = {"bench": "page_cost", "rounds": args.rounds, "items": args.items,
               "page_submit_cpu_ms": round(statistics.median(times["page_submit"]), 2),
               "api_round_cpu_ms": round(statistics.median(times["api_round"]), 2),
               "api_over_page": round(statistics.median(
                   [api / page for page, api in zip(times["page_submit"], times["api_round"], strict=True)]), 2)}
    if profile is not None:
        import pstats

        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(50)
    figures["page_queries_per_submit"] = page.queries_of_one_submit()
    figures["page_html_bytes"] = page.last_size
    print(json.dumps(figures), flush=True)


class InProcess:
    """Calls crossfeed.wsgi.application as a gunicorn worker does, with a signed-in session or a token."""

    def __init__(self, campaign: int, credentials: list[str]) -> None:
        from crossfeed.wsgi import application

        self.application, self.campaign, self.rng = application, campaign, random.Random(1)
        self.credentials, self.last_size = credentials, 0
        self.partials: dict[int, str] = {}
        if credentials[0].startswith("load"):
            self.cookies = [self._session(name) for name in credentials]

    @staticmethod
    def _session(username: str) -> tuple[str, str]:
        """(cookie header, CSRF token): what the browser holds after signing in."""
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.sessions.backends.db import SessionStore
        from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

        user = get_user_model().objects.get(username=username)
        session = SessionStore()
        session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
        session.create()
        secret = _get_new_csrf_string()
        return f"sessionid={session.session_key}; csrftoken={secret}", _mask_cipher_secret(secret)

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[str, bytes]:
        import io

        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                   "CONTENT_LENGTH": str(len(body))}
        environ.update({"HTTP_" + key.upper().replace("-", "_"): value for key, value in headers.items()})
        environ["CONTENT_TYPE"] = environ.pop("HTTP_CONTENT_TYPE", "")
        status: list[str] = []
        result = self.application(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            return status[0], b"".join(result)
        finally:
            result.close()  # request_finished, as under gunicorn

    def _htmx(self, index: int, trigger: str) -> dict[str, str]:
        cookie, csrf = self.cookies[index]
        return {"Cookie": cookie, "HX-Request": "true", "HX-Target": "workspace", "HX-Trigger": trigger,
                "Accept-Encoding": "gzip, deflate, br, zstd",
                "X-CSRFToken": csrf, "Origin": "http://127.0.0.1", "Accept-Language": "en",
                "Content-Type": "application/x-www-form-urlencoded"}

    def page_submit(self, index: int) -> None:
        if index not in self.partials:
            status, body = self.call("POST", f"/campaigns/{self.campaign}/next/", self._htmx(index, "workspace"))
            assert status.startswith("200"), status
            self.partials[index] = _text(body)
        action, form = ranking_form(self.partials[index], self.rng)
        status, body = self.call("POST", action, self._htmx(index, "judgment-form"), form)
        self.partials[index], self.last_size = _text(body), len(body)
        assert status.startswith("200") and "Saved. Here is the next item." in self.partials[index], status

    def api_round(self, index: int) -> None:
        auth = {"Authorization": f"Token {self.credentials[index]}", "Content-Type": "application/json"}
        status, payload = self.call("GET", f"/api/v1/campaigns/{self.campaign}/next/", auth)
        assert status.startswith("200"), payload
        ids = [response["id"] for response in json.loads(payload)["item"]["responses"]]
        ranks = dict(zip(map(str, ids), self.rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
        body = json.dumps({"ranks": ranks, "comment": "", "seconds_spent": 10, "idempotency_key": uuid.uuid4().hex})
        item = json.loads(payload)["item"]["id"]
        status, payload = self.call("POST", f"/api/v1/items/{item}/judgments/", auth, body.encode())
        assert status.startswith("201"), payload

    def queries_of_one_submit(self) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            self.page_submit(0)
        return len(queries)


def _text(body: bytes) -> str:
    return (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--reload-every", type=int, default=64,
                        help="submits between two loads of the annotation page (each load is 2 requests; 64 gives the "
                             "1.03 requests per judged item the issue counted)")
    parser.add_argument("--slices", type=int, default=4,
                        help="alternating slices per path (API, page, API, page, ...), --seconds in all per path")
    parser.add_argument("--repeats", type=int, default=1, help="the whole measurement, this many times on one server")
    parser.add_argument("--cost", action="store_true", help="only the CPU per judged item in process (no server)")
    parser.add_argument("--rounds", type=int, default=400, help="with --cost: judged items per path")
    parser.add_argument("--profile", action="store_true", help="with --cost: a cProfile of the page submits")
    args = parser.parse_args()
    if args.cost:
        cost(args)
        return
    with tempfile.TemporaryDirectory(prefix="crossfeed-page-") as var_dir:
        env = {**os.environ, "CROSSFEED_VAR_DIR": var_dir, "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
               "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        campaign, tokens, usernames = prepare(env, args.items, args.annotators)
        port = free_port()
        with gunicorn(env, port):
            for _ in range(args.repeats):
                print(json.dumps(measure(port, campaign, tokens, usernames, args)), flush=True)


if __name__ == "__main__":
    main()
