"""Whether this worker process has been asked to stop (SIGTERM from supervisord, Ctrl-C in `make run`).

Set by the worker's signal handler (crossfeed/jobs/worker.py). A task that can run for hours looks here and winds
down on its own (a training run checkpoints and stops its trainer) instead of being killed with its children left
running when supervisord's stop timeout runs out.
"""

import threading

stop_requested = threading.Event()
