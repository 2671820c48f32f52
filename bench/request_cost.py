"""The cost of one annotator round (next, then submit) inside Django, without HTTP, against the bench floor view.

    .venv/bin/python bench/request_cost.py                          # SQLite, then PostgreSQL; 600 rounds each
    .venv/bin/python bench/request_cost.py --databases postgresql   # one of them
    .venv/bin/python bench/request_cost.py --profile                # and the top of a cProfile of the rounds

It calls the WSGI application of crossfeed/wsgi.py in this process, as a gunicorn worker calls it (Django's
request_started / request_finished signals included, so connections are opened and closed as CONN_MAX_AGE says;
Django's test client skips that, and so missed a connection opened per request), on a fresh database (SQLite in a
temporary folder; PostgreSQL: a private throwaway cluster, tests/postgres.py), seeded like bench/annotate_load.py:
Swahili prompts, four Tamil responses, 64 annotators. The figure is the application's own work per round:
middleware, authentication, the API views, the services and the database driver, without sockets and HTTP parsing.
The baseline, in the same process, is the floor view of the load bench (one indexed read and one insert), counted
twice because a round is two requests. Prints one JSON line per database.

On PostgreSQL it also counts, on the wire (libpq's protocol trace, tests/round_trips.py), the round trips of each
next, each submit and each floor call (BEGIN, COMMIT and health checks included), and measures the server's CPU
per round: every process of the private cluster, from /proc, over the same rounds. The server's CPU per round is
what "judgments per second per PostgreSQL core" in docs/deploy.md is made of.
`DB_CONN_MAX_AGE=0 .venv/bin/python bench/request_cost.py` shows what a connection per request costs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRACED_ROUNDS = 50  # round trips are counted over this many extra rounds (tracing costs CPU of its own)
PAGE_ANNOTATORS = 32


def cluster_cpu_seconds(database_url: str) -> float:
    """User + system CPU of the private cluster's postmaster and all its children (backends, writers, ...)."""
    sockets = Path(unquote(urlsplit(database_url).hostname or ""))
    pid_file = sockets.parent / "data" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        pid, parent = int(entry.name), int(fields[1])
        if pid == postmaster or parent == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def measure(args) -> None:
    """One database, in this process: the database is chosen when settings load (DATABASE_URL)."""
    database_url = os.environ.get("DATABASE_URL")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.annotate_load import seed

    call_command("migrate", verbosity=0)
    # 64 annotators for the API rounds, and on PostgreSQL PAGE_ANNOTATORS more for the annotation page's path.
    campaign, tokens = seed(max(args.rounds, 1000) + TRACED_ROUNDS, 64 + PAGE_ANNOTATORS)
    tokens = tokens[:64]
    connections.close_all()
    from crossfeed.wsgi import application

    def call(method: str, path: str, token: str | None = None, body: bytes = b"") -> tuple[str, bytes]:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json"}
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Token {token}"
        status: list[str] = []
        result = application(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            return status[0], b"".join(result)
        finally:
            result.close()  # request_finished: where Django closes the connection, or keeps it (CONN_MAX_AGE)

    rng = random.Random(1)
    trips: dict[str, list[int]] = {"next": [], "submit": [], "floor": []}
    counter = None

    def counted(kind: str, method: str, path: str, token: str | None = None, body: bytes = b""):
        before = counter.count() if counter is not None else 0
        answer = call(method, path, token, body)
        if counter is not None:
            trips[kind].append(counter.count() - before)
        return answer

    def round_trip(token: str) -> None:
        status, payload = counted("next", "GET", f"/api/v1/campaigns/{campaign}/next/", token)
        assert status.startswith("200"), payload
        item = json.loads(payload)["item"]
        ids = [response["id"] for response in item["responses"]]
        ranks = dict(zip(map(str, ids), rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
        body = json.dumps({"ranks": ranks, "comment": "", "seconds_spent": 10, "idempotency_key": uuid.uuid4().hex})
        status, payload = counted("submit", "POST", f"/api/v1/items/{item['id']}/judgments/", token, body.encode())
        assert status.startswith("201"), payload

    def floor_call() -> None:
        status, payload = counted("floor", "POST", "/bench/floor/")
        assert status.startswith("200"), payload

    for token in tokens:  # warm-up: every annotator's token and languages cached, as in a running server
        round_trip(token)
    for _ in range(len(tokens)):
        floor_call()
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU, not waits on the database
        profile.enable()
    server = cluster_cpu_seconds(database_url) if args.database == "postgresql" else 0.0
    cpu = time.process_time()
    for index in range(args.rounds):
        round_trip(tokens[index % len(tokens)])
    round_ms = (time.process_time() - cpu) / args.rounds * 1000
    server_round_ms = ((cluster_cpu_seconds(database_url) - server) / args.rounds * 1000
                       if args.database == "postgresql" else None)
    if profile is not None:
        profile.disable()
    server = cluster_cpu_seconds(database_url) if args.database == "postgresql" else 0.0
    cpu = time.process_time()
    for _ in range(args.rounds):
        floor_call()
    floor_ms = (time.process_time() - cpu) / args.rounds * 1000 * 2
    server_floor_ms = ((cluster_cpu_seconds(database_url) - server) / args.rounds * 1000 * 2
                       if args.database == "postgresql" else None)
    line = {"bench": "request_cost", "database": args.database, "rounds": args.rounds,
            "round_cpu_ms": round(round_ms, 2), "floor_two_calls_cpu_ms": round(floor_ms, 2),
            "ratio": round(round_ms / floor_ms, 2),
            "db_conn_max_age": connections["default"].settings_dict["CONN_MAX_AGE"], "profiled": args.profile}
    if args.database == "postgresql":
        from tests.round_trips import RoundTrips

        with tempfile.TemporaryDirectory(prefix="crossfeed-trace-") as folder, RoundTrips(Path(folder)) as counter:
            for index in range(TRACED_ROUNDS):
                round_trip(tokens[index % len(tokens)])
                floor_call()
        options = connections["default"].settings_dict["OPTIONS"]
        line.update({
            "server_cpu_ms_per_round": round(server_round_ms, 2),
            "server_cpu_ms_floor_two_calls": round(server_floor_ms, 2),
            # A round is one judgment: one PostgreSQL core serves at most this many per second.
            "judgments_per_s_per_server_core": round(1000 / server_round_ms) if server_round_ms else None,
            "round_trips": {kind: round(sum(counts) / len(counts), 2) for kind, counts in trips.items()},
            "round_trips_max": {kind: max(counts) for kind, counts in trips.items()},
            "server_side_binding": bool(options.get("server_side_binding")),
            "pool": bool(options.get("pool")),
            "page": page_path_cost(campaign, database_url, args.rounds),
        })
    print(json.dumps(line), flush=True)
    if profile is not None:
        import pstats

        pstats.Stats(profile, stream=sys.stderr).sort_stats(args.profile_sort).print_stats(40)


def page_path_cost(campaign: int, database_url: str, rounds: int) -> dict:
    """The annotators' own path on PostgreSQL: one page submit (store the judgment, render the next item's HTML) as
    bench/page_flow_bench.py --cost makes it, with a signed-in session; its CPU here and the server's, and its round
    trips. What docs/deploy.md's sizing counts per judgment."""
    from django.core.management import call_command

    from bench.page_flow_bench import InProcess
    from tests.round_trips import RoundTrips

    call_command("collectstatic", interactive=False, verbosity=0)
    page = InProcess(campaign, [f"load{n}" for n in range(64, 64 + PAGE_ANNOTATORS)])
    for index in range(PAGE_ANNOTATORS):  # warm-up: caches filled, statements prepared
        page.page_submit(index)
    server = cluster_cpu_seconds(database_url)
    cpu = time.process_time()
    for index in range(rounds):
        page.page_submit(index % PAGE_ANNOTATORS)
    client_ms = (time.process_time() - cpu) / rounds * 1000
    server_ms = (cluster_cpu_seconds(database_url) - server) / rounds * 1000
    with tempfile.TemporaryDirectory(prefix="crossfeed-trace-") as folder, RoundTrips(Path(folder)) as trips:
        before = trips.count()
        for index in range(TRACED_ROUNDS):
            page.page_submit(index % PAGE_ANNOTATORS)
        round_trips = (trips.count() - before) / TRACED_ROUNDS
    return {"submit_cpu_ms": round(client_ms, 2), "server_cpu_ms_per_submit": round(server_ms, 2),
            "judgments_per_s_per_server_core": round(1000 / server_ms) if server_ms else None,
            "round_trips_per_submit": round(round_trips, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-sort", default="cumulative", help="pstats order: cumulative, tottime, ...")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.database:
        measure(args)
        return
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "crossfeed.settings", "LOG_LEVEL": "WARNING",
            "CROSSFEED_BENCH_FLOOR": "1", "PYTHONPATH": str(ROOT)}
    base.pop("DATABASE_URL", None)
    child = [sys.executable, str(Path(__file__).resolve()), "--rounds", str(args.rounds),
             *(["--profile", "--profile-sort", args.profile_sort] if args.profile else [])]
    for database in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="crossfeed-cost-") as var_dir:
            env = {**base, "CROSSFEED_VAR_DIR": var_dir}
            if database == "sqlite":
                subprocess.run([*child, "--database", "sqlite"], cwd=ROOT, env=env, check=True)
                continue
            from tests.postgres import PostgresUnavailable, throwaway_cluster

            try:
                with throwaway_cluster() as database_url:
                    subprocess.run([*child, "--database", "postgresql"], cwd=ROOT,
                                   env={**env, "DATABASE_URL": database_url}, check=True)
            except PostgresUnavailable as exc:
                print(json.dumps({"bench": "request_cost", "database": "postgresql", "skipped": str(exc)}),
                      flush=True)


if __name__ == "__main__":
    main()
