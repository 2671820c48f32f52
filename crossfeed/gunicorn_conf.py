"""gunicorn settings. bin/serve (`make run`), bench/annotate_load.py and the fault tests all start gunicorn with
`-c crossfeed/gunicorn_conf.py`, so the benchmark measures what `make run` serves. Every value can be changed from
the environment (docs/configuration.md); flags given on gunicorn's command line win over this file.

Why sync-style workers (one request at a time per process, 2 × cores + 1 processes) and not threads with keep-alive:
measured with bench/annotate_load.py at 64 annotators, a keep-alive connection stays with the worker process that
accepted it, and the processes end up with unequal shares: in one run the per-annotator mean latencies fell into
three clusters, 2 annotators at 16 ms, 18 at ~128 ms and 44 at ~300 ms, which is what the p99 was made of. A
sync worker takes the next connection from the kernel's queue only when it is free, so requests are served first
come, first served.

Why not gunicorn's plain sync worker: it reads the request with blocking calls, so a client that sends half a request
holds a process, and three such clients kept /healthz waiting for 60 s. crossfeed/gunicorn_worker.py's
BufferedSyncWorker serves the same way but reads every request whole, without blocking, before it serves it; a slow
or stalled client costs a socket, never a process (a proxy in front in production buffers too: docs/deploy.md).
`WEB_WORKER_CLASS=sync` brings back gunicorn's own worker, `WEB_WORKER_CLASS=gthread WEB_THREADS=4` threaded ones.
"""

import os

_cores = os.cpu_count() or 2

workers = int(os.environ.get("WEB_WORKERS", _cores * 2 + 1))
worker_class = os.environ.get("WEB_WORKER_CLASS", "crossfeed.gunicorn_worker.BufferedSyncWorker")
threads = int(os.environ.get("WEB_THREADS", "1"))  # above 1 with WEB_WORKER_CLASS=sync, gunicorn runs gthread
# Unfinished requests (still arriving) one BufferedSyncWorker process holds at most; it stops accepting beyond.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "1000"))
# A sync worker busy longer than this is killed and replaced: room for the largest synchronous request (an import of
# 100,000 items took 34 s here) and an upper bound on a stuck one.
timeout = int(os.environ.get("WEB_TIMEOUT", "300"))
graceful_timeout = 20
# Each worker process is replaced after this many requests (plus a random 0..jitter, so that the processes do not
# all restart at once): whatever memory one request made a process keep (a large body, a large page) is given back.
# 0 turns recycling off. A replacement costs a fork of the preloaded master, a few milliseconds.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("WEB_MAX_REQUESTS_JITTER", "200"))
# Import the application once in the master, then fork: no worker pays the import on its first request, and the
# workers share the imported code's memory (crossfeed/wsgi.py freezes it out of the garbage collector's reach).
preload_app = True
backlog = 2048
