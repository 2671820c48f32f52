"""Exactly one trainer per run, whatever fails: the worker killed mid-run, an exception in its watch loop, a stale or
retried run with a trainer still alive, a second trainer started on the same folder.

The first tests use a stand-in trainer: a real process in a session of its own whose command line names the run's
folder, as `accelerate launch ... --config <output_dir>/<stage>/run.yaml` does. The slow ones train the tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from annotation.models import JobStatus
from crossfeed.errors import Conflict
from tests.make_run import ROOT, lane_worker_command, served_env, wait_for
from tests.training.conftest import FAST
from training.models import BaseModel, ModelVersion, TrainingMetric, TrainingRun
from training.services.execution import training_run_execute
from training.services.runs import (
    export_train_file,
    training_run_create,
    training_run_retry,
    training_runs_fail_stale,
)

# media, base and preference_export come from tests/training/conftest.py.
pytestmark = pytest.mark.usefixtures("media")


def stand_in_trainer(folder: Path) -> subprocess.Popen:
    """A process that looks like a stage's trainer to the worker: own process group, the run folder in its argv."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(folder / "dpo" / "run.yaml")],
                            start_new_session=True)


def alive(process: subprocess.Popen | psutil.Process) -> bool:
    """Running, not only a zombie waiting for a parent to read its exit status (an orphan's new parent may be slow)."""
    try:
        return psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def trainers_of(run: TrainingRun) -> list[psutil.Process]:
    """Live processes (any parent) whose command line names the run's folder: its trainers."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(run.output_dir in arg
                                                                  for arg in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture
def bare_run(db, tmp_path):
    base = BaseModel.objects.create(name="stand-in", path=str(tmp_path / "model"))
    return TrainingRun.objects.create(kind="dpo", base_model=base, output_dir=str(tmp_path / "run-1"),
                                      status=JobStatus.RUNNING, attempts=1, heartbeat_at=timezone.now())


@pytest.fixture
def stand_in(bare_run):
    process = stand_in_trainer(Path(bare_run.output_dir))
    yield process
    process.kill()  # not os.killpg: a test may have replaced it
    process.wait()


def test_the_stale_check_stops_a_trainer_whose_worker_died_before_failing_the_run(bare_run, stand_in):
    # Its worker is alive and is the trainer's parent (this test process): the run is left alone.
    TrainingRun.objects.filter(pk=bare_run.pk).update(worker=f"host:{os.getpid()}", process_group=stand_in.pid)
    assert training_runs_fail_stale() == 0
    assert alive(stand_in)
    # Its worker is another process (it died; the kernel gave the trainer another parent): stopped, then failed.
    TrainingRun.objects.filter(pk=bare_run.pk).update(worker="host:999999999")
    assert training_runs_fail_stale() == 1
    bare_run.refresh_from_db()
    assert not alive(stand_in)
    assert bare_run.status == JobStatus.FAILED and "died while the run was running" in bare_run.error
    assert bare_run.process_group is None


def test_a_silent_run_is_failed_only_after_its_trainer_is_stopped(bare_run, stand_in):
    TrainingRun.objects.filter(pk=bare_run.pk).update(worker=f"host:{os.getpid()}", process_group=stand_in.pid,
                                                      heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert training_runs_fail_stale() == 1
    assert not alive(stand_in)
    bare_run.refresh_from_db()
    assert bare_run.status == JobStatus.FAILED and "stopped responding" in bare_run.error


def test_retry_stops_a_trainer_that_the_last_attempt_left_running(bare_run, stand_in):
    TrainingRun.objects.filter(pk=bare_run.pk).update(status=JobStatus.FAILED, process_group=stand_in.pid,
                                                      worker="other-host:1")
    run = training_run_retry(run=TrainingRun.objects.get(pk=bare_run.pk))
    assert run.status == JobStatus.QUEUED
    assert not alive(stand_in)


def test_retry_refuses_while_a_trainer_that_cannot_be_stopped_is_alive(bare_run, stand_in, monkeypatch):
    TrainingRun.objects.filter(pk=bare_run.pk).update(status=JobStatus.FAILED, process_group=stand_in.pid)

    def denied(pgid, sig):
        raise PermissionError(1, "Operation not permitted")  # a trainer of another user

    monkeypatch.setattr("training.services.trainer_group.os.killpg", denied)
    with pytest.raises(Conflict, match="still running and could not be stopped"):
        training_run_retry(run=TrainingRun.objects.get(pk=bare_run.pk))
    assert TrainingRun.objects.get(pk=bare_run.pk).status == JobStatus.FAILED
    assert alive(stand_in)


def test_a_process_group_number_taken_by_another_program_is_left_alone(bare_run, tmp_path):
    # The recorded group ended and the kernel gave its number to an unrelated program: not the run's trainer.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        TrainingRun.objects.filter(pk=bare_run.pk).update(worker="host:999999999", process_group=other.pid,
                                                          heartbeat_at=timezone.now() - timedelta(minutes=10))
        assert training_runs_fail_stale() == 1
        assert alive(other)
    finally:
        other.kill()
        other.wait()


def test_a_second_trainer_on_the_same_folder_exits_at_once(tmp_path, tiny_model_dir, preference_export):
    from training.scripts.common import EXIT_FOLDER_IN_USE, LOCK_FILE, OutputDirLock
    from training.services import execution

    assert execution.EXIT_FOLDER_IN_USE == EXIT_FOLDER_IN_USE
    folder = tmp_path / "run" / "dpo"
    config = {**FAST, "model_name_or_path": str(tiny_model_dir), "output_dir": str(folder),
              "train_file": export_train_file(preference_export)}
    config_path = tmp_path / "run.yaml"
    config_path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    first = OutputDirLock(folder)  # the first trainer, holding the folder
    try:
        began = time.monotonic()
        second = subprocess.run([sys.executable, "training/scripts/dpo.py", "--config", str(config_path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=300, check=False)
        took = time.monotonic() - began
    finally:
        first.release()
    assert second.returncode == EXIT_FOLDER_IN_USE, second.stderr[-3000:]
    assert f"{folder} is in use by another trainer (pid {os.getpid()}" in second.stderr
    assert sorted(path.name for path in folder.iterdir()) == [LOCK_FILE], "the second trainer wrote nothing"
    assert took < 120  # imports only: it reads no data and loads no model
    OutputDirLock(folder).release()  # free again once the holder let go


# --- with the tiny model ------------------------------------------------------------------------------------------


def metrics_lines(run: TrainingRun, stage: str = "dpo") -> list[dict]:
    path = Path(run.output_dir, stage, "metrics.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def saved_steps(run: TrainingRun) -> list[int]:
    return [line["step"] for line in metrics_lines(run) if line["event"] == "save"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_exception_in_the_watch_loop_stops_the_trainer_before_the_run_is_failed(base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False,
                              params={**FAST, "max_steps": 100_000, "save_steps": 100_000})
    worker = threading.Thread(target=training_run_execute, kwargs={"run_id": run.id, "poll_seconds": 0.2})
    worker.start()
    try:
        wait_for(lambda: TrainingRun.objects.get(pk=run.id).step >= 1 or TrainingRun.objects.get(
            pk=run.id).status not in (JobStatus.QUEUED, JobStatus.RUNNING), timeout=180, message="no step in 180 s")
        run.refresh_from_db()
        assert run.status == JobStatus.RUNNING, run.error + run.log_tail
        assert len(trainers_of(run)) == 1
        # A step too large for the metrics table (as `max_steps: 1e20` produced): the copy into the database raises.
        with Path(run.output_dir, "dpo", "metrics.jsonl").open("a", encoding="utf-8") as metrics:
            metrics.write(json.dumps({"event": "log", "step": 2**70, "max_steps": 2**70}) + "\n")
        wait_for(lambda: TrainingRun.objects.get(pk=run.id).status != JobStatus.RUNNING, timeout=60,
                 message="the run stayed running")
        # Stopped first: the moment the run reads failed, no trainer is left (it used to go on at 99 % CPU).
        assert trainers_of(run) == []
    finally:
        worker.join(timeout=120)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "OverflowError" in run.error
    assert run.process_group is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_then_restarted_and_retried_leaves_one_trainer(base, preference_export, tmp_path):
    env = served_env(tmp_path / "var", OMP_NUM_THREADS="1")
    log = tmp_path / "worker.log"

    def start_worker(*options: str) -> subprocess.Popen:
        with log.open("ab") as output:
            return subprocess.Popen(lane_worker_command("accelerator", "--interval", "0.2", *options), cwd=ROOT,
                                    env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    first = start_worker()
    second = None
    try:
        run = training_run_create(kind="dpo", base_model=base, export=preference_export,
                                  params={**FAST, "max_steps": 100_000, "save_steps": 3})
        wait_for(lambda: saved_steps(run) or TrainingRun.objects.get(pk=run.pk).status not in (
            JobStatus.QUEUED, JobStatus.RUNNING), timeout=240,
            message=lambda: f"no checkpoint within 240 s:\n{log.read_text()[-3000:]}")
        run.refresh_from_db()
        assert run.status == JobStatus.RUNNING, run.error + run.log_tail
        (trainer,) = trainers_of(run)
        assert trainer.pid == run.process_group
        first.send_signal(signal.SIGKILL)  # the worker only: its trainer, in a session of its own, goes on alone
        first.wait()
        assert alive(trainer), "precondition: the killed worker's trainer is left running"

        # The restarted worker finds the trainer its predecessor left behind, stops it, then fails the run. --max-tasks
        # 1: the retry is its one task (the evaluations queued after training are not this test's business).
        second = start_worker("--max-tasks", "1")
        wait_for(lambda: TrainingRun.objects.get(pk=run.id).status == JobStatus.FAILED, timeout=120,
                 message=lambda: f"the restarted worker did not fail the run:\n{log.read_text()[-3000:]}")
        run.refresh_from_db()
        assert "died while the run was running" in run.error, run.error
        assert trainers_of(run) == [] and not alive(trainer)

        # The newest complete checkpoint: the orphan may have been stopped in the middle of writing a later one.
        resume_from = max(int(path.parent.name.removeprefix("checkpoint-"))
                          for path in Path(run.output_dir, "dpo").glob("checkpoint-*/run_config.yaml"))
        run = training_run_retry(run=run)
        assert run.status == JobStatus.QUEUED
        TrainingRun.objects.filter(pk=run.pk).update(resolved={"dpo": {**run.resolved["dpo"],
                                                                       "max_steps": resume_from + 3}})
        most = 0
        deadline = time.monotonic() + 300
        while TrainingRun.objects.get(pk=run.pk).status in (JobStatus.QUEUED, JobStatus.RUNNING):
            most = max(most, len(trainers_of(run)))
            assert time.monotonic() < deadline, f"the retry did not end within 300 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        second.wait(timeout=60)  # --max-tasks 1: it exits after the retry
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait()
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail
    assert most == 1, f"{most} trainers at once"
    assert trainers_of(run) == []
    assert run.attempts == 2

    lines = metrics_lines(run)
    begins = [line for line in lines if line["event"] == "train_begin"]
    assert len(begins) == 2, "one train_begin per attempt"
    assert begins[1]["step"] == resume_from, "the second attempt resumed from the first one's last checkpoint"
    assert TrainingMetric.objects.filter(run=run, event="train_begin").count() == 2
    # After the second train_begin only one trainer wrote: its steps never go back.
    second_attempt = [line["step"] for line in lines[lines.index(begins[1]):]]
    assert second_attempt == sorted(second_attempt) and second_attempt[-1] == resume_from + 3

    folder = Path(run.output_dir, "dpo")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["global_step"] == resume_from + 3
    assert manifest["resumed_from"].endswith(f"checkpoint-{resume_from}")
    assert manifest["config"]["max_steps"] == resume_from + 3
    assert Path(manifest["adapter_path"], "adapter_config.json").is_file()
    version = ModelVersion.objects.get(run=run)
    assert version.manifest == manifest and version.adapter_path == manifest["adapter_path"]
    from training.scripts.common import OutputDirLock

    OutputDirLock(folder).release()  # no trainer holds the folder any more


def test_resume_skips_a_checkpoint_that_a_killed_trainer_left_half_written(tmp_path):
    from training.scripts.common import RUN_CONFIG_FILE, DPORunConfig, resolve_resume_checkpoint

    for step in (3, 6, 9):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (3, 6):  # written by CheckpointMetadataCallback.on_save, after the Trainer wrote the rest
        (tmp_path / f"checkpoint-{step}" / RUN_CONFIG_FILE).write_text("{}\n")
    config = DPORunConfig.__new__(DPORunConfig)  # only the two fields below are read
    config.output_dir, config.resume_from_checkpoint = str(tmp_path), "auto"
    assert resolve_resume_checkpoint(config) == str(tmp_path / "checkpoint-6")
