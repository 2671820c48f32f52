"""A run's trainer as processes on this host: find its process group, tell whether its worker left it behind, stop it.

The worker starts each stage's script in a process group of its own (`start_new_session`), so that one signal
reaches `accelerate launch` and every rank it started, and records the group's id (the leader's pid) in
TrainingRun.process_group. The trainer outlives a worker that dies without running its clean-up (SIGKILL, the OOM
killer); these functions let whoever next looks at the run (the restarted worker, a web page's stale check, a
retry) stop it before the run is marked failed or started again, so that a run never has two trainers.

A group id alone is not proof: once every process of a group has ended, the kernel may hand that number to a new
process. A group counts as the run's only while one of its live processes names the run's folder on its command
line (the launcher's and every rank's `--config <output_dir>/<stage>/run.yaml`). Processes on other hosts are
invisible here; the trainer's lock file (training/scripts/common.py) stops a second trainer on a shared folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass

import psutil

from training.models import TrainingRun

logger = logging.getLogger(__name__)
TERM_GRACE_SECONDS = 10.0
KILL_GRACE_SECONDS = 5.0


@dataclass
class TrainerGroup:
    """The live processes of a run's recorded process group on this host."""

    pgid: int
    processes: list[psutil.Process]

    @property
    def leader(self) -> psutil.Process | None:
        return next((process for process in self.processes if process.pid == self.pgid), None)


def _members(pgid: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) != pgid or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue  # a zombie has ended: it only waits for its parent to read its exit status
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
        members.append(process)
    return members


def _names_folder(process: psutil.Process, folder: str) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(folder in argument for argument in process.cmdline())
    return False


def trainer_group_find(*, pgid: int | None, output_dir: str) -> TrainerGroup | None:
    """The live processes of group `pgid` on this host if they are a trainer of `output_dir`, else None."""
    if not pgid or not output_dir:
        return None
    members = _members(pgid)
    if not any(_names_folder(process, output_dir) for process in members):
        return None
    return TrainerGroup(pgid=pgid, processes=members)


def trainer_group_of(run: TrainingRun) -> TrainerGroup | None:
    return trainer_group_find(pgid=run.process_group, output_dir=run.output_dir)


def worker_pid(run: TrainingRun) -> int | None:
    """The pid part of TrainingRun.worker ("host:pid")."""
    _host, _, pid = (run.worker or "").rpartition(":")
    return int(pid) if pid.isdigit() else None


def trainer_group_orphaned(run: TrainingRun, group: TrainerGroup) -> bool:
    """Whether the worker that started the trainer has gone: the kernel gives an orphan to another parent.

    Only the parent of the group's leader is asked, never whether a pid on this host is alive: a worker in another
    container with the same hostname would look dead from here.
    """
    leader = group.leader
    if leader is None:  # the launcher ended (its worker saw that and stops the rest) or was killed with the worker
        return True
    with contextlib.suppress(psutil.Error):
        return leader.ppid() != worker_pid(run)
    return False


def trainer_group_stop(*, group: TrainerGroup, reason: str) -> bool:
    """SIGTERM to the group (the scripts stop and the launcher takes its ranks down), SIGKILL to what is left after
    TERM_GRACE_SECONDS. Returns whether no process of it is left."""
    logger.warning("stopping trainer process group %s (%d processes): %s", group.pgid, len(group.processes), reason)
    for sig, grace in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, KILL_GRACE_SECONDS)):
        try:
            os.killpg(group.pgid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            logger.error("trainer process group %s belongs to another user: it cannot be stopped from here",
                         group.pgid)
            return False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _members(group.pgid):
                return True
            time.sleep(0.1)
    left = _members(group.pgid)
    if left:
        logger.error("trainer process group %s still has %d processes after SIGKILL (stuck in the kernel?)",
                     group.pgid, len(left))
    return not left
