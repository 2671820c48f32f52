"""Which queues each worker lane takes (the lanes: crossfeed/jobs/__init__.py)."""

from __future__ import annotations

from django.conf import settings

FAST = "fast"
ACCELERATOR = "accelerator"
LANES = (FAST, ACCELERATOR)

# Run when a lane's worker starts, and again whenever it comes back from a database outage: what a worker that
# died (SIGKILL, OOM, a crash) left behind on this host is cleaned up before new work is taken.
RECOVER_AT_START = {
    ACCELERATOR: ["training.services.runs.training_runs_fail_stale",
                  "generation.services.jobs.generation_jobs_fail_stale",
                  "translation.services.jobs.translation_jobs_fail_stale"],
    FAST: ["instructions.services.exports.instruction_exports_fail_stale"],
}


def accelerator_queues() -> list[str]:
    return list(settings.CROSSFEED_ACCELERATOR_QUEUES)


def lane_queues(lane: str) -> tuple[list[str], list[str]]:
    """(queues, excluded queues) in django-tasks-db's terms: the fast lane is "*" less the accelerator's queues, so a
    queue added later lands in the fast lane without anyone remembering to list it."""
    if lane == ACCELERATOR:
        return accelerator_queues(), []
    if lane == FAST:
        return ["*"], accelerator_queues()
    raise ValueError(f"unknown lane {lane!r}; one of {', '.join(LANES)}")
