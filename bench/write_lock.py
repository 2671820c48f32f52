"""SQLite writers queueing on Crossfeed's write lock against SQLite's own busy handler, same work, same run.

    .venv/bin/python bench/write_lock.py                       # 4 processes x 1,500 transactions each
    .venv/bin/python bench/write_lock.py --processes 8 --transactions 500 --hold-ms 1

P processes each run T write transactions (BEGIN IMMEDIATE, one INSERT, a hold of H ms standing for a request's
work inside its transaction, COMMIT) on one SQLite file in WAL mode, the way gunicorn's sync workers do. Two modes,
each on a fresh file:

- `write_lock`: crossfeed/db/sqlite3/base.py's WriteLock (thread lock + flock) taken before BEGIN, as the
  `crossfeed.db.sqlite3` engine does;
- `busy_handler` (the baseline): BEGIN IMMEDIATE straight away, SQLite's busy handler sleeping and retrying
  (Django's own SQLite backend with the same timeout).

For each it prints one JSON line: transactions/s, the wait for the write (start to BEGIN done) as p50 / p99 /
p99.9 / max and the number of waits over 100 ms, and the CPU per transaction; then a line with the ratios (write
lock over busy handler). The wait's tail is what made the p99 of the annotation API under load
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def writer(path: str, mode: str, transactions: int, hold: float, timeout: float, start, results) -> None:
    from crossfeed.db.sqlite3.base import WriteLock

    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    lock = WriteLock.for_database(path) if mode == "write_lock" else None
    waits: list[float] = []
    start.wait()
    cpu, wall = time.process_time(), time.monotonic()
    for index in range(transactions):
        begun = time.monotonic()
        if lock is not None:
            lock.acquire(timeout=timeout)
        try:
            connection.execute("BEGIN IMMEDIATE")
            waits.append(time.monotonic() - begun)
            connection.execute("INSERT INTO t (pid, n) VALUES (?, ?)", (os.getpid(), index))
            time.sleep(hold)
            connection.execute("COMMIT")
        finally:
            if lock is not None:
                lock.release()
    results.put((waits, time.process_time() - cpu, time.monotonic() - wall))
    connection.close()


def run(mode: str, processes: int, transactions: int, hold: float, timeout: float) -> dict:
    folder = tempfile.mkdtemp(prefix="crossfeed-lock-")
    path = str(Path(folder) / "bench.sqlite3")
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pid INTEGER, n INTEGER)")
    setup.close()
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [context.Process(target=writer, args=(path, mode, transactions, hold, timeout, start, results))
                for _ in range(processes)]
    for child in children:
        child.start()
    time.sleep(0.5)  # every writer connected and waiting on the start signal
    start.set()
    outcomes = [results.get(timeout=600) for _ in children]
    for child in children:
        child.join()
    waits = sorted(wait for outcome in outcomes for wait in outcome[0])
    wall = max(outcome[2] for outcome in outcomes)
    stored = sqlite3.connect(path).execute("SELECT COUNT(*) FROM t").fetchone()[0]
    return {"bench": "write_lock", "mode": mode, "processes": processes, "transactions": len(waits),
            "stored": stored, "hold_ms": hold * 1000, "transactions_per_s": round(len(waits) / wall, 1),
            "wait_p50_ms": round(statistics.median(waits) * 1000, 2),
            "wait_p99_ms": round(waits[int(len(waits) * 0.99) - 1] * 1000, 2),
            "wait_p999_ms": round(waits[int(len(waits) * 0.999) - 1] * 1000, 2),
            "wait_max_ms": round(waits[-1] * 1000, 2), "waits_over_100ms": sum(wait > 0.1 for wait in waits),
            "cpu_us_per_transaction": round(sum(outcome[1] for outcome in outcomes) / len(waits) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=1500, help="per process")
    parser.add_argument("--hold-ms", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    lines = {mode: run(mode, args.processes, args.transactions, args.hold_ms / 1000, args.timeout)
             for mode in ("busy_handler", "write_lock")}
    for line in lines.values():
        print(json.dumps(line), flush=True)
    ours, base = lines["write_lock"], lines["busy_handler"]
    print(json.dumps({"bench": "write_lock_ratio",
                      "throughput_ratio": round(ours["transactions_per_s"] / base["transactions_per_s"], 2),
                      "wait_p99_ratio": round(ours["wait_p99_ms"] / max(base["wait_p99_ms"], 0.01), 2),
                      "wait_max_ratio": round(ours["wait_max_ms"] / max(base["wait_max_ms"], 0.01), 2),
                      "all_stored": all(line["stored"] == line["transactions"] for line in lines.values())}),
          flush=True)


if __name__ == "__main__":
    main()
