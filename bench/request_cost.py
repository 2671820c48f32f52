"""The CPU cost of one annotator round (next, then submit) inside Django, without HTTP, against the bench floor view.

    .venv/bin/python bench/request_cost.py                 # 600 rounds after a warm-up
    .venv/bin/python bench/request_cost.py --profile       # and the top of a cProfile of the rounds

It calls the WSGI application of crossfeed/wsgi.py in this process, as a gunicorn worker calls it (Django's
request_started / request_finished signals included, so connections are opened and closed as CONN_MAX_AGE says;
Django's test client skips that, and so missed a connection opened per request), on a fresh SQLite database in a
temporary folder (seeded like bench/annotate_load.py: Swahili prompts, four Tamil responses, 64 annotators). The
figure is the application's own work per round: middleware, authentication, the API views, the services and
SQLite, without sockets and HTTP parsing. The baseline, in the same process, is the floor view of the load bench
(one indexed read and one insert), counted twice because a round is two requests. Prints one JSON line.
`DB_CONN_MAX_AGE=0 .venv/bin/python bench/request_cost.py` shows what a connection per request costs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    var_dir = tempfile.mkdtemp(prefix="crossfeed-cost-")
    os.environ.update(CROSSFEED_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="crossfeed.settings", LOG_LEVEL="WARNING",
                      CROSSFEED_BENCH_FLOOR="1")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from bench.annotate_load import seed

    call_command("migrate", verbosity=0)
    campaign, tokens = seed(max(args.rounds, 1000), 64)
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

    def round_trip(token: str) -> None:
        status, payload = call("GET", f"/api/v1/campaigns/{campaign}/next/", token)
        assert status.startswith("200"), payload
        item = json.loads(payload)["item"]
        ids = [response["id"] for response in item["responses"]]
        ranks = dict(zip(map(str, ids), rng.sample(range(1, len(ids) + 1), len(ids)), strict=True))
        body = json.dumps({"ranks": ranks, "comment": "", "seconds_spent": 10, "idempotency_key": uuid.uuid4().hex})
        status, payload = call("POST", f"/api/v1/items/{item['id']}/judgments/", token, body.encode())
        assert status.startswith("201"), payload

    for token in tokens:  # warm-up: every annotator's token and languages cached, as in a running server
        round_trip(token)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    cpu = time.process_time()
    for index in range(args.rounds):
        round_trip(tokens[index % len(tokens)])
    round_ms = (time.process_time() - cpu) / args.rounds * 1000
    if profile is not None:
        profile.disable()
    cpu = time.process_time()
    for _ in range(args.rounds):
        status, payload = call("POST", "/bench/floor/")
        assert status.startswith("200"), payload
    floor_ms = (time.process_time() - cpu) / args.rounds * 1000 * 2
    print(json.dumps({"bench": "request_cost", "rounds": args.rounds, "round_cpu_ms": round(round_ms, 2),
                      "floor_two_calls_cpu_ms": round(floor_ms, 2), "ratio": round(round_ms / floor_ms, 2),
                      "db_conn_max_age": connections["default"].settings_dict["CONN_MAX_AGE"],
                      "profiled": args.profile}), flush=True)
    if profile is not None:
        import pstats

        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
