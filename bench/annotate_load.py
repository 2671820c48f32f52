"""Annotation under load: C concurrent annotators looping next → submit through the public API, against gunicorn
started as `make run` starts it, on SQLite and (when server binaries exist) on a private PostgreSQL cluster.

    .venv/bin/python bench/annotate_load.py                         # C = 16, 64, 256; 20 s each; both databases
    .venv/bin/python bench/annotate_load.py --concurrency 64 --seconds 10 --databases sqlite
    .venv/bin/python bench/annotate_load.py --concurrency 64 --seconds 30 --slices 6 --databases postgresql

For each database and C it prints one JSON line: submits/s, p50/p95/p99 latency of next and of submit, errors,
the integrity checks after the run (judgments stored = successful submits, no item above k, no annotator twice on
an item, lease counters equal to the lease rows, no lease left after expiry), and the floor: a bare Django view
doing one indexed read and one insert, under the same server and the same load, with our throughput as a
fraction of it (each of our iterations is two requests, next and submit, so the floor is counted per two calls).
Our load and the floor's run in turn, `--slices` times each (4 by default), and the figures are their totals: the
speed of a shared host drifts within a minute, and both then meet the same drift.
The percentiles are those of the steady state: each client's first round (all C connect at the same instant, and
no annotator's token or languages are cached yet) is reported apart, as `first_round`. Throughput counts every
request. Load comes from one asyncio process on 127.0.0.1 (HTTP/1.1; it keeps a connection open when the server
allows it: the sync workers of crossfeed/gunicorn_conf.py close each one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- a minimal HTTP/1.1 keep-alive client (the load generator must not be the bottleneck) ----------------------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Tally:
    """Latencies by call. Each client's first round (a cold start: everyone connects at the same instant, and each
    annotator's token and languages are not cached yet) is kept apart in `first`, so the percentiles describe the
    steady state; the first round's own percentiles are printed beside them."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"next": [], "submit": [], "floor": []}
        self.first: dict[str, list[float]] = {"next": [], "submit": [], "floor": []}
        self.submits = 0
        self.errors: dict[str, int] = {}
        self.exhausted = 0

    def record(self, call: str, seconds: float, first: bool) -> None:
        (self.first if first else self.latency)[call].append(seconds)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def annotator(port: int, campaign: int, token: str, deadline: float, tally: Tally, think: float,
                    first: bool = True) -> None:
    connection = Connection(port)
    auth = {"Authorization": f"Token {token}"}
    rng = random.Random(token)
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            status, body = await connection.request("GET", f"/api/v1/campaigns/{campaign}/next/", auth)
            tally.record("next", time.perf_counter() - start, first)
            if status == 204:
                tally.exhausted += 1
                return
            if status != 200:
                tally.error(f"next {status}")
                continue
            item = json.loads(body)["item"]
            ids = [response["id"] for response in item["responses"]]
            ranks = dict(zip(map(str, ids), rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
            flags = {str(ids[0]): ["wrong_language"]} if rng.random() < 0.1 else {}
            payload = json.dumps({"ranks": ranks, "flags": flags, "comment": "", "seconds_spent": rng.randint(5, 90),
                                  "idempotency_key": uuid.uuid4().hex}).encode()
            start = time.perf_counter()
            status, body = await connection.request("POST", f"/api/v1/items/{item['id']}/judgments/",
                                                    {**auth, "Content-Type": "application/json"}, payload)
            tally.record("submit", time.perf_counter() - start, first)
            first = False
            if status == 201:
                tally.submits += 1
            else:
                tally.error(f"submit {status}")
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))  # reading and ranking the next item
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
        tally.error(type(exc).__name__)
    finally:
        await connection.close()


async def floor_client(port: int, deadline: float, tally: Tally, first: bool = True) -> None:
    connection = Connection(port)
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            status, _ = await connection.request("POST", "/bench/floor/", {})
            tally.record("floor", time.perf_counter() - start, first)
            first = False
            if status != 200:
                tally.error(f"floor {status}")
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
        tally.error(type(exc).__name__)
    finally:
        await connection.close()


async def load(port: int, campaign: int, tokens: list[str], seconds: float, floor: bool,
               think: float = 0.0, tally: Tally | None = None, first: bool = True) -> tuple[Tally, float]:
    """One phase of load; `tally` accumulates over phases (--slices), `first`: whether this phase's first round is
    the cold start that is reported apart."""
    tally = tally if tally is not None else Tally()
    start = time.monotonic()
    deadline = start + seconds
    if floor:
        await asyncio.gather(*(floor_client(port, deadline, tally, first) for _ in tokens))
    else:
        await asyncio.gather(*(annotator(port, campaign, token, deadline, tally, think, first) for token in tokens))
    return tally, time.monotonic() - start


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1),
            "p99_ms": round(cuts[98] * 1000, 1)}


# --- the server and the data ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(port: int, *extra: str) -> list[str]:
    """gunicorn as bin/serve (`make run`) starts it, with the same config file, on 127.0.0.1:port."""
    return [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "crossfeed" / "gunicorn_conf.py"),
            "crossfeed.wsgi:application", "--bind", f"127.0.0.1:{port}", "--log-level", "warning", *extra]


@contextmanager
def gunicorn(env: dict[str, str], port: int):
    command = gunicorn_command(port)
    if env.get("GUNICORN_ACCESS_LOG"):  # for diagnosis: each request's path, status and seconds
        command += ["--access-logfile", env["GUNICORN_ACCESS_LOG"], "--access-logformat", '%(r)s %(s)s %(L)s %(t)s']
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    if b" 200 " in probe.recv(100):
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not answer /healthz within 60 s")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def prepare(env: dict[str, str], n_items: int, n_annotators: int) -> tuple[int, list[str]]:
    """Migrate and seed through a child process (Django set up with the bench's environment)."""
    code = f"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from bench.annotate_load import seed
print(json.dumps(seed({n_items}, {n_annotators})))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    campaign, tokens = json.loads(done.stdout.strip().splitlines()[-1])
    return campaign, tokens


def seed(n_items: int, n_annotators: int) -> tuple[int, list[str]]:
    import io

    from django.contrib.auth import get_user_model

    from annotation.models import AnnotatorProfile, Language
    from annotation.services.campaigns import campaign_create
    from annotation.services.imports import items_import
    from crossfeed.tokens.services import tokens_issue_many

    campaign = campaign_create(name="load", created_by=None, overlap=3)
    rng = random.Random(7)
    words = ["kwa", "nini", "anga", "ni", "la", "buluu", "mwanga", "jua", "hewa", "chembe", "rangi"]
    lines = []
    for index in range(n_items):
        prompt = " ".join(rng.choice(words) for _ in range(30))
        responses = [{"text": f"{index}-{n} " + "தமிழ் பதில் " * 40, "language": "ta", "model": f"m{n}"}
                     for n in range(4)]
        lines.append(json.dumps({"external_id": f"load-{index}", "prompt": {"text": prompt, "language": "sw"},
                                 "pivot": {"text": "Explain why the sky is blue.", "language": "en"},
                                 "responses": responses}, ensure_ascii=False))
    items_import(campaign=campaign, source=io.BytesIO("\n".join(lines).encode()))
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"load{n}", password="!") for n in range(n_annotators)]
    )
    profiles = AnnotatorProfile.objects.bulk_create([AnnotatorProfile(user=user) for user in users])
    tamil, swahili = Language.objects.get(code="ta"), Language.objects.get(code="sw")
    for profile in profiles:
        profile.native_languages.add(tamil)
        profile.reading_languages.add(swahili)
    return campaign.id, tokens_issue_many(users=users)


def integrity(env: dict[str, str], submits: int) -> dict:
    code = f"""
import json, django
django.setup()
from bench.annotate_load import check_integrity
print(json.dumps(check_integrity({submits})))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_integrity(submits: int) -> dict:
    from datetime import timedelta

    from django.db.models import Count, F
    from django.utils import timezone

    from annotation.models import Item, Judgment, Lease
    from annotation.services.assignment import leases_reclaim

    stored = Judgment.objects.count()
    over_k = Item.objects.filter(judgment_count__gt=F("target")).count()
    counted = Item.objects.annotate(rows=Count("judgments")).exclude(rows=F("judgment_count")).count()
    duplicates = Judgment.objects.values("item", "annotator").annotate(n=Count("id")).filter(n__gt=1).count()
    lease_rows = dict(Lease.objects.values_list("item").annotate(n=Count("id")).values_list("item", "n"))
    lease_mismatch = sum(
        1 for item_id, count in Item.objects.filter(lease_count__gt=0).values_list("id", "lease_count")
        if lease_rows.get(item_id, 0) != count
    ) + sum(1 for item_id in lease_rows if not Item.objects.filter(pk=item_id, lease_count__gt=0).exists())
    # After every lease has expired and been reclaimed, no place may stay reserved.
    leases_reclaim(now=timezone.now() + timedelta(days=1))
    dangling = Item.objects.filter(lease_count__gt=0).count() + Lease.objects.count()
    ok = stored == submits and over_k == 0 and counted == 0 and duplicates == 0 and lease_mismatch == 0 \
        and dangling == 0
    return {"judgments_stored": stored, "successful_submits": submits, "items_above_k": over_k,
            "count_mismatches": counted, "duplicate_annotator_item": duplicates, "lease_counter_mismatches":
            lease_mismatch, "leases_dangling_after_expiry": dangling, "ok": ok}


def run_database(name: str, database_url: str | None, args) -> None:
    with tempfile.TemporaryDirectory(prefix="crossfeed-load-") as var_dir:
        env = {**os.environ, "CROSSFEED_VAR_DIR": var_dir, "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
               "CROSSFEED_BENCH_FLOOR": "1", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        levels = [int(c) for c in args.concurrency.split(",")]
        campaign, tokens = prepare(env, args.items, max(levels))
        port = free_port()
        total_submits = 0
        with gunicorn(env, port):
            for level in levels:
                # Our load and the floor's in turn, `slices` times each, so that a drift of the host's speed (other
                # work on a shared machine) falls on both alike; the totals make the figures.
                tally, floor, elapsed, floor_elapsed = Tally(), Tally(), 0.0, 0.0
                for index in range(args.slices):
                    seconds = args.seconds / args.slices
                    elapsed += asyncio.run(load(port, campaign, tokens[:level], seconds, floor=False,
                                                think=args.think_seconds, tally=tally, first=index == 0))[1]
                    floor_elapsed += asyncio.run(load(port, campaign, tokens[:level], seconds, floor=True,
                                                      tally=floor, first=index == 0))[1]
                total_submits += tally.submits
                rate = tally.submits / elapsed
                floor_calls = len(floor.latency["floor"]) + len(floor.first["floor"])
                floor_rate = floor_calls / floor_elapsed / 2  # one iteration = two calls
                print(json.dumps({
                    "bench": "annotate_load", "database": name, "annotators": level, "seconds": round(elapsed, 1),
                    "slices": args.slices, "think_seconds": args.think_seconds,
                    "submits_per_s": round(rate, 1), "next": percentiles(tally.latency["next"]),
                    "submit": percentiles(tally.latency["submit"]), "errors": tally.errors,
                    "annotators_out_of_items": tally.exhausted,
                    "floor_iterations_per_s": round(floor_rate, 1), "fraction_of_floor": round(rate / floor_rate, 2),
                    "floor_call": percentiles(floor.latency["floor"]), "floor_errors": floor.errors,
                    "first_round": {"next": percentiles(tally.first["next"]),
                                    "submit": percentiles(tally.first["submit"]),
                                    "floor_call": percentiles(floor.first["floor"])},
                    "integrity": integrity(env, total_submits),
                    "targets": "64 annotators on SQLite: fraction_of_floor >= 0.5 and p99 <= 250 ms for next and "
                               "submit; on PostgreSQL: fraction_of_floor >= 0.8; integrity ok everywhere",
                }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="16,64,256")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--slices", type=int, default=4,
                        help="alternate our load and the floor's this many times each (the seconds are split): "
                             "on a shared host whose speed drifts, both then meet the same drift")
    parser.add_argument("--think-seconds", type=float, default=0.0,
                        help="mean pause between items per annotator (0: as fast as the server answers)")
    args = parser.parse_args()
    databases = args.databases.split(",")
    if "sqlite" in databases:
        run_database("sqlite", None, args)
    if "postgresql" in databases:
        from tests.postgres import PostgresUnavailable, throwaway_cluster

        try:
            with throwaway_cluster() as database_url:
                run_database("postgresql", database_url, args)
        except PostgresUnavailable as exc:
            print(json.dumps({"bench": "annotate_load", "database": "postgresql", "skipped": str(exc)}))


if __name__ == "__main__":
    main()
