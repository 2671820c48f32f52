"""Background work in lanes: worker processes that each take the queues of one lane, so lanes never wait for
each other.

- **fast**: every queue not named by another lane (exports, imports, bookkeeping; CPU, seconds to minutes).
- **accelerator**: the queues in settings.CROSSFEED_ACCELERATOR_QUEUES (training, evaluation); one worker per GPU
  host, so one run at a time has the host's accelerators.

`manage.py crossfeed_worker --lane fast|accelerator` runs one lane (crossfeed/jobs/worker.py: django-tasks-db's
worker, which also outlasts database errors); `make run` keeps one of each running under supervisord
(bin/serve, bin/supervisord.conf). docs/deploy.md: lanes on several hosts.
"""
