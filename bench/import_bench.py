"""Annotators during a large import (issue 11: a 150,000-item import held SQLite's write lock for 65–100 s, and
annotators got 503s). C annotators loop next → submit through the API against gunicorn, started as `make run`
starts it, on SQLite, while an admin imports N new items into the same campaign, through the API (a JSONL body,
as `curl --data-binary` sends it) or `manage.py import_items`.

    .venv/bin/python bench/import_bench.py                                  # 150,000 items, 16 annotators, API
    .venv/bin/python bench/import_bench.py --items 20000 --via command --annotators 8

It prints one JSON line: the annotators' next and submit latency (p50/p95/p99/max) before the import (the same
load without it, for comparison), during the validation pass, and while the import writes (staging and publishing;
phases read from the import's record), their errors (503 = "database is locked"), the import's duration and
answer, and the integrity checks after the run (bench/annotate_load.py's, plus: every imported item visible, none
left staged). Target (issue 11): p99 under 1 s while the import writes, no 503.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.annotate_load import Connection, free_port, gunicorn, integrity, percentiles, prepare  # noqa: E402

WORDS = ["kwa", "nini", "anga", "ni", "la", "buluu", "mwanga", "jua", "hewa", "chembe", "rangi", "maji", "mvua"]


def write_items(path: Path, n_items: int, words_per_text: int) -> int:
    """N new sw→ta items with 4 responses each, like bench/annotate_load.py's (different ids); returns bytes."""
    rng = random.Random(11)
    with path.open("w", encoding="utf-8") as out:
        for index in range(n_items):
            prompt = " ".join(rng.choice(WORDS) for _ in range(words_per_text))
            responses = [{"text": f"{index}-{n} " + " ".join(rng.choice(WORDS) for _ in range(words_per_text)),
                          "language": "ta", "model": f"m{n}"} for n in range(4)]
            out.write(json.dumps({"external_id": f"bulk-{index}", "prompt": {"text": prompt, "language": "sw"},
                                  "responses": responses}, ensure_ascii=False) + "\n")
    return path.stat().st_size


def admin_token(env: dict[str, str]) -> str:
    """A superuser and a key for it, through `manage.py drf_create_token` as the API contract names it."""
    code = """
import django
django.setup()
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("benchadmin", "benchadmin@example.invalid", "!")
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "manage.py", "drf_create_token", "benchadmin"], cwd=ROOT, env=env,
                          check=True, capture_output=True, text=True)
    keys = re.findall(r"\b[0-9a-f]{40}\b", done.stdout)
    if not keys:
        raise SystemExit(f"no key in drf_create_token's output: {done.stdout!r}")
    return keys[-1]


class Phases:
    """When the import's record appeared (validation over, staging begun) and when it finished, polled read-only
    from the SQLite file."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.staging_at: float | None = None
        self.finished_at: float | None = None
        self.record: dict = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        try:
            self._read()
        except sqlite3.OperationalError as exc:  # a Crossfeed from before staged imports: no record to read
            self.record = {"unavailable": str(exc)}

    def _read(self) -> None:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as db:
            # The seeding imported the annotators' items: only a later record is the measured import's.
            seeded = db.execute("SELECT COALESCE(MAX(id), 0) FROM annotation_itemimport").fetchone()[0]
            while not self.stop.is_set():
                row = db.execute("SELECT status, staged, created, updated, unchanged, error FROM "
                                 "annotation_itemimport WHERE id > ? ORDER BY id DESC LIMIT 1", [seeded]).fetchone()
                now = time.monotonic()
                if row is not None:
                    self.staging_at = self.staging_at or now
                    self.record = dict(zip(["status", "staged", "created", "updated", "unchanged", "error"], row,
                                           strict=True))
                    if row[0] != "running" and self.finished_at is None:
                        self.finished_at = now
                time.sleep(0.05)


class Calls:
    def __init__(self) -> None:
        self.rows: list[tuple[float, str, float]] = []  # (started, call, seconds)
        self.errors: list[tuple[float, str]] = []
        self.submits = 0


async def annotate(port: int, campaign: int, token: str, stop: asyncio.Event, calls: Calls, think: float) -> None:
    connection = Connection(port)
    auth = {"Authorization": f"Token {token}"}
    rng = random.Random(token)
    try:
        while not stop.is_set():
            began = time.monotonic()
            start = time.perf_counter()
            status, body = await connection.request("GET", f"/api/v1/campaigns/{campaign}/next/", auth)
            calls.rows.append((began, "next", time.perf_counter() - start))
            if status != 200:
                if status != 204:
                    calls.errors.append((began, f"next {status}"))
                await asyncio.sleep(think or 0.05)
                continue
            item = json.loads(body)["item"]
            ids = [response["id"] for response in item["responses"]]
            ranks = dict(zip(map(str, ids), rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
            payload = json.dumps({"ranks": ranks, "idempotency_key": uuid.uuid4().hex}).encode()
            began = time.monotonic()
            start = time.perf_counter()
            status, _ = await connection.request("POST", f"/api/v1/items/{item['id']}/judgments/",
                                                 {**auth, "Content-Type": "application/json"}, payload)
            calls.rows.append((began, "submit", time.perf_counter() - start))
            if status == 201:
                calls.submits += 1
            else:
                calls.errors.append((began, f"submit {status}"))
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))
    except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
        calls.errors.append((time.monotonic(), type(exc).__name__))
    finally:
        await connection.close()


def import_through_api(port: int, campaign: int, token: str, path: Path) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1200)
    with path.open("rb") as body:
        connection.request("POST", f"/api/v1/campaigns/{campaign}/items/", body=body, headers={
            "Authorization": f"Token {token}", "Content-Type": "application/x-ndjson",
            "Content-Length": str(path.stat().st_size)})
        response = connection.getresponse()
        answer = response.read()
    try:
        return response.status, json.loads(answer)
    except ValueError:
        return response.status, {"body": answer[:500].decode(errors="replace")}


def import_through_command(env: dict[str, str], campaign: int, path: Path) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "manage.py", "import_items", str(campaign), str(path), "--verbosity", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return done.returncode, {"stdout": done.stdout.strip()[-500:], "stderr": done.stderr.strip()[-1500:]}


async def measure(port: int, campaign: int, tokens: list[str], think: float, before_s: float, run_import) -> dict:
    stop = asyncio.Event()
    calls = Calls()
    clients = [asyncio.create_task(annotate(port, campaign, token, stop, calls, think)) for token in tokens]
    await asyncio.sleep(before_s)
    import_began = time.monotonic()
    status, answer = await asyncio.to_thread(run_import)
    import_ended = time.monotonic()
    await asyncio.sleep(2)  # a little of the load after the import, with its items visible
    stop.set()
    await asyncio.gather(*clients)
    return {"calls": calls, "import_began": import_began, "import_ended": import_ended, "status": status,
            "answer": answer}


def summarize(calls: Calls, start: float, end: float) -> dict:
    rows = [row for row in calls.rows if start <= row[0] < end]
    summary = {"seconds": round(end - start, 1), "calls": len(rows)}
    for call in ("next", "submit"):
        values = [seconds for _, name, seconds in rows if name == call]
        summary[call] = {**percentiles(values), "max_ms": round(max(values) * 1000, 1) if values else None}
    errors: dict[str, int] = {}
    for began, kind in calls.errors:
        if start <= began < end:
            errors[kind] = errors.get(kind, 0) + 1
    summary["errors"] = errors
    return summary


def check_import(env: dict[str, str], campaign: int) -> dict:
    code = f"""
import json, django
django.setup()
from annotation.models import Item
every = getattr(Item, "all_objects", Item.objects)  # Item.objects alone before staged imports existed
print(json.dumps({{"visible_items": Item.objects.filter(campaign_id={campaign}).count(),
                  "staged_left": every.filter(staged_by__isnull=False).count() if every is not Item.objects else 0}}))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=150_000, help="items in the import")
    parser.add_argument("--existing", type=int, default=3000, help="items the annotators work on meanwhile")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--think-seconds", type=float, default=0.5,
                        help="mean pause between items per annotator (0: as fast as the server answers)")
    parser.add_argument("--before-seconds", type=float, default=15.0, help="load without the import, first")
    parser.add_argument("--words", type=int, default=25, help="words per prompt and per response")
    parser.add_argument("--via", choices=["api", "command"], default="api")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crossfeed-import-") as var_dir:
        env = {**os.environ, "CROSSFEED_VAR_DIR": var_dir, "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
               "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
        env.pop("DATABASE_URL", None)
        path = Path(var_dir) / "items.jsonl"
        size = write_items(path, args.items, args.words)
        campaign, tokens = prepare(env, args.existing, args.annotators)
        token = admin_token(env)
        phases = Phases(Path(var_dir) / "crossfeed.sqlite3")
        port = free_port()
        with gunicorn(env, port):
            phases.thread.start()
            run_import = (
                (lambda: import_through_api(port, campaign, token, path)) if args.via == "api"
                else (lambda: import_through_command(env, campaign, path))
            )
            result = asyncio.run(measure(port, campaign, tokens, args.think_seconds, args.before_seconds,
                                         run_import))
            time.sleep(0.2)
            phases.stop.set()
            phases.thread.join(10)
        calls, began, ended = result["calls"], result["import_began"], result["import_ended"]
        staging = phases.staging_at or ended
        writing_ended = phases.finished_at or ended
        print(json.dumps({
            "bench": "import_bench", "database": "sqlite", "via": args.via, "items": args.items,
            "file_mb": round(size / 1e6, 1), "annotators": args.annotators, "think_seconds": args.think_seconds,
            "import": {"status": result["status"], "answer": result["answer"], "seconds": round(ended - began, 1),
                       "validating_s": round(staging - began, 1), "writing_s": round(writing_ended - staging, 1),
                       "record": phases.record},
            "before_import": summarize(calls, began - args.before_seconds + 3, began),
            "validating": summarize(calls, began, staging),
            "writing": summarize(calls, staging, writing_ended),
            "whole_import": summarize(calls, began, ended),
            "after_import": summarize(calls, ended, ended + 10),
            "integrity": {**integrity(env, calls.submits), **check_import(env, campaign)},
            "target": "writing: p99 < 1000 ms for next and submit, no 503; import all or nothing",
        }), flush=True)


if __name__ == "__main__":
    main()
