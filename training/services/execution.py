"""Running a training run on a worker: one subprocess per stage, watched until it ends.

The worker writes the stage's YAML config into its output folder, starts the script (`python sft.py` for one
process, `accelerate launch` for several) in a process group of its own, and every second copies new lines of
metrics.jsonl into the database; every few seconds it refreshes the heartbeat and looks for a cancel request.
Cancel first asks the script to stop (the CANCEL file: it checkpoints and exits), then terminates the process
group. A stage counts as done only when its manifest.json exists; only then is its ModelVersion registered.

One trainer per run, whatever fails (training/services/trainer_group.py): a group left by an earlier attempt on this
host is stopped before the run is claimed; whatever ends the watch (the script's exit, a cancel, the worker being
stopped, an exception in the loop such as a database error or a value that overflows a column) stops the stage's
group before the run is marked; and every heartbeat checks that the run is still this attempt's. When someone else
has marked it (the stale check of a web page while this worker hung), the worker stops its trainer and writes
nothing more. Transient database errors (a locked SQLite file, a lost connection) are waited out for up to
DATABASE_OUTAGE_SECONDS; the trainer needs no database and goes on meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import JobStatus
from crossfeed.jobs.shutdown import stop_requested
from training.models import ModelVersion, TrainingMetric, TrainingRun
from training.services.trainer_group import trainer_group_find, trainer_group_of, trainer_group_stop

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "training" / "scripts"
ACCELERATE_CONFIGS = ROOT / "training" / "configs" / "accelerate"
HEARTBEAT_SECONDS = 5.0
CANCEL_GRACE_SECONDS = 30.0
LOG_TAIL_LINES = 40
EXIT_CANCELLED = 3
EXIT_FOLDER_IN_USE = 4  # training/scripts/common.py (not imported: it imports transformers, heavy for the web)
# Less than the stale check's 3 minutes (runs.STALE_AFTER): a worker cut off from the database for longer stops its
# trainer itself, before a web page's stale check can mark the run failed while it still trains.
DATABASE_OUTAGE_SECONDS = 120.0
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
WORKER_STOPPED = ("the worker was stopped during {stage} (a restart or shutdown of the worker); Retry resumes "
                  "from the last checkpoint")


class Ending:
    """Why a stage's watch ended, besides the script ending by itself."""

    CANCEL = "cancel"
    WORKER_STOPPED = "worker stopped"
    TAKEN_OVER = "taken over"


@dataclass
class StageWatch:
    """What the worker knows of a running stage's files."""

    folder: Path
    offset: int = 0
    lines: int = 0
    started: float = field(default_factory=time.monotonic)
    first_step: int | None = None


@dataclass(frozen=True)
class Attempt:
    """This worker's claim on a run: the run is its own while it is running with this attempt number."""

    run_id: int
    number: int

    def owned(self):
        return TrainingRun.objects.filter(pk=self.run_id, status=JobStatus.RUNNING, attempts=self.number)


def training_run_execute(*, run_id: int, poll_seconds: float = 1.0) -> TrainingRun:
    queued = TrainingRun.objects.get(pk=run_id)
    if queued.status == JobStatus.QUEUED and not _stop_previous_trainer(queued):
        return TrainingRun.objects.get(pk=run_id)
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}", cancel_requested=False, process_group=None,
    )
    run = TrainingRun.objects.select_related("base_model", "start_version").get(pk=run_id)
    if not claimed:
        logger.info("training run %s is %s, not queued: not running it", run_id, run.status)
        return run
    attempt = Attempt(run.pk, run.attempts)
    try:
        status, error = _run_stages(run, attempt, poll_seconds)
    except Exception as exc:  # a bug or an environment problem: the run must not stay "running"
        logger.exception("training run %s crashed in the worker", run_id)
        status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
    except BaseException:  # the worker exits at once (a second SIGTERM); its trainer was stopped in _run_stage
        with contextlib.suppress(Exception):
            attempt.owned().update(status=JobStatus.FAILED, error=WORKER_STOPPED.format(stage="training"),
                                   finished_at=timezone.now(), eta_seconds=None)
        raise
    if status is None:
        logger.warning("training run %s was marked by someone else while attempt %s ran (stale check?): its "
                       "trainer was stopped, nothing more is written", run_id, attempt.number)
        return TrainingRun.objects.get(pk=run_id)
    finished = _write_retrying(lambda: attempt.owned().update(status=status, error=error,
                                                              finished_at=timezone.now(), eta_seconds=None))
    run.refresh_from_db()
    if finished and run.status == JobStatus.SUCCEEDED:
        # Every new version gets per-language scores beside its parent's, on the sample benchmarks. A local
        # import: evaluation depends on training, not the other way round.
        from evaluation.services import evaluation_after_training

        evaluation_after_training(run)
    return run


def _stop_previous_trainer(run: TrainingRun) -> bool:
    """Stop a trainer that an earlier attempt left on this host (its stale run was failed from another host, or its
    stop failed); if it cannot be stopped, fail the queued run instead of starting a second trainer beside it."""
    group = trainer_group_of(run)
    if group is None:
        return True
    if trainer_group_stop(group=group, reason=f"training run {run.pk} is starting again"):
        return True
    TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, finished_at=timezone.now(),
        error=(f"the trainer of an earlier attempt (process group {group.pgid} on {socket.gethostname()}) is still "
               f"running and could not be stopped; stop it (`kill -9 -- -{group.pgid}` as its user), then Retry"),
    )
    return False


def _write_retrying(write, attempts: int = 5):
    """A write that must not be lost to a transient database error: tried again after 1, 2, 4, 8 s."""
    for number in range(attempts):
        try:
            return write()
        except TRANSIENT_ERRORS as exc:
            if number == attempts - 1:
                raise
            logger.warning("database error, trying again in %d s: %s", 2**number, exc)
            time.sleep(2**number)
    return None


def _run_stages(run: TrainingRun, attempt: Attempt, poll_seconds: float) -> tuple[str | None, str]:
    adapter = run.start_version.adapter_path if run.start_version else None
    for stage in run.stages:
        done = run.versions.filter(kind=stage).first()
        if done is not None:  # a retry of sft_dpo whose SFT stage already finished
            adapter = done.adapter_path
            continue
        values = dict(run.resolved[stage])
        if stage == "dpo":
            values["adapter_path"] = adapter
        status, error = _run_stage(run, attempt, stage, values, poll_seconds)
        if status != JobStatus.SUCCEEDED:
            return status, error
        adapter = _register_version(run, stage).adapter_path
    return JobStatus.SUCCEEDED, ""


def _command(run: TrainingRun, stage: str, config_path: Path) -> list[str]:
    script = str(SCRIPTS / f"{stage}.py")
    if run.num_processes == 1:
        return [sys.executable, script, "--config", str(config_path)]
    accelerate_config = run.params.get("accelerate_config") or _default_accelerate_config()
    # torchrun's default rendezvous port (29500) would join two runs started on one host into one job.
    port = _free_port()
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(ACCELERATE_CONFIGS / f"{accelerate_config}.yaml"), "--num_processes", str(run.num_processes),
            "--main_process_port", str(port), script, "--config", str(config_path)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_accelerate_config() -> str:
    import torch

    return "multi_gpu" if torch.cuda.is_available() else "cpu"


def _run_stage(run: TrainingRun, attempt: Attempt, stage: str, values: dict[str, Any],
               poll_seconds: float) -> tuple[str | None, str]:
    folder = Path(values["output_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "CANCEL").unlink(missing_ok=True)
    config_path = folder / "run.yaml"
    config_path.write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True), encoding="utf-8")
    TrainingRun.objects.filter(pk=run.pk).update(stage=stage, step=0, total_steps=0, eta_seconds=None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with (folder / "train.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            _command(run, stage, config_path), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group: cancel stops accelerate's children too
        )
    try:
        TrainingRun.objects.filter(pk=run.pk).update(process_group=process.pid)
        watch = StageWatch(folder)
        ending = _watch(run, attempt, stage, process, watch, poll_seconds)
    finally:
        # Whatever ended the watch, no process of this stage outlives it: an exception here (a database error, a
        # value too large for a column) used to leave the trainer running with nobody watching it.
        _end_stage_processes(run, attempt, process)
    if ending == Ending.TAKEN_OVER:
        return None, ""
    _copy_metrics(run, stage, watch)
    tail = _log_tail(folder / "train.log")
    TrainingRun.objects.filter(pk=run.pk).update(log_tail=tail)
    code = process.returncode
    if code == 0 and (folder / "manifest.json").is_file():
        return JobStatus.SUCCEEDED, ""
    if ending == Ending.WORKER_STOPPED:
        return JobStatus.FAILED, WORKER_STOPPED.format(stage=stage)
    if ending == Ending.CANCEL or code == EXIT_CANCELLED:
        return JobStatus.CANCELLED, f"cancelled during {stage}; Retry resumes from the last checkpoint"
    return JobStatus.FAILED, _failure(stage, code, tail)


def _end_stage_processes(run: TrainingRun, attempt: Attempt, process: subprocess.Popen) -> None:
    """Stop the stage's process group if anything of it is still running, reap the launcher, and forget the group
    once nothing of it is left."""
    group = trainer_group_find(pgid=process.pid, output_dir=run.output_dir)
    gone = group is None or trainer_group_stop(group=group, reason=f"training run {run.pk}: the watch ended")
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if not gone:
        return  # process_group stays recorded: a retry stops it first, or refuses to start
    try:
        attempt.owned().update(process_group=None)
    except TRANSIENT_ERRORS:
        logger.warning("training run %s: could not clear its process group (database error)", run.pk)


def _watch(run: TrainingRun, attempt: Attempt, stage: str, process: subprocess.Popen, watch: StageWatch,
           poll_seconds: float) -> str | None:
    """Poll until the process ends; returns why the watch asked it to end (an Ending), or None."""
    last_beat = 0.0
    stop_since: float | None = None
    ending: str | None = None
    database_ok = time.monotonic()
    while process.poll() is None:
        time.sleep(poll_seconds)
        if ending is None and stop_requested.is_set():
            ending, stop_since = Ending.WORKER_STOPPED, time.monotonic()
            (watch.folder / "CANCEL").touch()  # the script checkpoints at the next step and exits
        try:
            _copy_metrics(run, stage, watch)
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                # The log tail goes with the heartbeat, so the run page shows the script's output while it trains
                # (the web host may be another machine than this worker, and cannot read train.log itself).
                if not attempt.owned().update(heartbeat_at=timezone.now(),
                                              log_tail=_log_tail(watch.folder / "train.log")):
                    return Ending.TAKEN_OVER
                if ending is None and TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
                    ending, stop_since = Ending.CANCEL, time.monotonic()
                    (watch.folder / "CANCEL").touch()
            database_ok = time.monotonic()
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() - database_ok > DATABASE_OUTAGE_SECONDS:
                raise
            logger.warning("training run %s: database error while watching, trying again: %s", run.pk, exc)
        if stop_since is not None and time.monotonic() - stop_since > CANCEL_GRACE_SECONDS:
            break  # the script did not stop at a step in time; _end_stage_processes stops its group
    return ending


def _copy_metrics(run: TrainingRun, stage: str, watch: StageWatch) -> None:
    path = watch.folder / "metrics.jsonl"
    if not path.is_file():
        return
    with path.open("rb") as handle:
        handle.seek(watch.offset)
        chunk = handle.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
    if not complete:
        return
    metrics, progress = [], {}
    lines = watch.lines
    for raw in complete.splitlines():
        lines += 1
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        step = int(line.get("step") or 0)
        values = {k: v for k, v in line.items() if k not in {"event", "step", "timestamp"}}
        metrics.append(TrainingMetric(run=run, stage=stage, line=lines, step=step, event=line.get("event", ""),
                                      values=values))
        progress = {"step": step, "total_steps": max(int(line.get("max_steps") or 0), 0)}
    # ignore_conflicts: a retry reads the same file from its start again; lines already copied are skipped.
    TrainingMetric.objects.bulk_create(metrics, ignore_conflicts=True)
    # Only now: after a database error the same lines are read again at the next poll, none is lost.
    watch.offset += len(complete)
    watch.lines = lines
    if progress:
        if watch.first_step is None:
            watch.first_step, watch.started = progress["step"], time.monotonic()
        progress["eta_seconds"] = _eta(watch, progress["step"], progress["total_steps"])
        TrainingRun.objects.filter(pk=run.pk).update(**progress)


def _eta(watch: StageWatch, step: int, total: int) -> int | None:
    done = step - (watch.first_step or 0)
    if done <= 0 or total <= step:
        return None
    return int((time.monotonic() - watch.started) / done * (total - step))


def _log_tail(path: Path) -> str:
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 64 * 1024))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _failure(stage: str, code: int | None, tail: str) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        reason = f"the {stage} process was killed by {name}{hint}"
    elif code == 2:
        reason = f"the {stage} script refused its configuration"
    elif code == EXIT_FOLDER_IN_USE:
        reason = f"another trainer is still using the {stage} folder; this attempt did not start"
    else:
        reason = f"the {stage} script exited with code {code}"
    last = "\n".join(tail.splitlines()[-8:])
    return f"{reason}. Last log lines:\n{last}" if last else reason


@transaction.atomic
def _register_version(run: TrainingRun, stage: str) -> ModelVersion:
    folder = Path(run.output_dir) / stage
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    parent = run.versions.filter(kind="sft").first() if stage == "dpo" else None
    datasets = manifest.get("datasets", {})
    return ModelVersion.objects.create(
        name=f"{run.base_model.name}-{stage}-run{run.pk}",
        base_model=run.base_model,
        parent=parent or run.start_version,
        run=run,
        kind=stage,
        adapter_path=manifest["adapter_path"],
        export=run.export if stage == "dpo" else run.sft_export,
        dataset_sha256=datasets.get("train_file", {}).get("sha256", ""),
        config=manifest.get("config", {}),
        metrics=manifest.get("metrics", {}),
        manifest=manifest,
    )
