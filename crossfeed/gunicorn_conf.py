"""gunicorn settings. bin/serve (`make run`), bench/annotate_load.py and the fault tests all start gunicorn with
`-c crossfeed/gunicorn_conf.py`, so the benchmark measures what `make run` serves. Every value can be changed from
the environment (docs/configuration.md); flags given on gunicorn's command line win over this file.

Why sync workers (one request at a time per process, 2 × cores + 1 processes) and not threads with keep-alive:
measured with bench/annotate_load.py at 64 annotators, a keep-alive connection stays with the worker process that
accepted it, and the processes end up with unequal shares: in one run the per-annotator mean latencies fell into
three clusters, 2 annotators at 16 ms, 18 at ~128 ms and 44 at ~300 ms, which is what the p99 was made of. A
sync worker takes the next connection from the kernel's queue only when it is free, so requests are served first
come, first served. Put a buffering proxy (nginx, Caddy) in front in production so that slow clients never hold a
worker: docs/deploy.md. `WEB_WORKER_CLASS=gthread WEB_THREADS=4` gives threaded workers back where that suits better.
"""

import os

_cores = os.cpu_count() or 2

workers = int(os.environ.get("WEB_WORKERS", _cores * 2 + 1))
worker_class = os.environ.get("WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("WEB_THREADS", "1"))  # above 1, gunicorn runs gthread workers
# A sync worker busy longer than this is killed and replaced: room for the largest synchronous request (an import of
# 100,000 items took 34 s here) and an upper bound on a stuck one.
timeout = int(os.environ.get("WEB_TIMEOUT", "300"))
graceful_timeout = 20
# Import the application once in the master, then fork: no worker pays the import on its first request, and the
# workers share the imported code's memory (crossfeed/wsgi.py freezes it out of the garbage collector's reach).
preload_app = True
backlog = 2048
