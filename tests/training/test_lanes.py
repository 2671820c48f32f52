"""An export requested while a long training run holds the accelerator lane finishes in seconds: `make run`
(bin/serve) runs the fast and the accelerator lanes as separate workers. The old bin/serve ran one worker for every
queue, and the export waited until the training run ended (hours on a GPU host). Stopping `make run` then stops the
trainer too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from annotation.models import JobStatus
from annotation.services.exports import export_create
from tests.make_run import make_run, served_env, wait_for
from tests.training.conftest import FAST
from tests.training.test_process_ownership import trainers_of
from training.models import TrainingRun
from training.services.runs import training_run_create

EXPORT_DONE_S = 60  # generous on two shared cores, beside a training process; the work itself is under a second


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_export_finishes_while_a_training_run_holds_the_accelerator_lane(base, preference_export, judged,
                                                                           admin_user, tmp_path):
    # One thread for the trainer: the two cores here are shared with the web server, both workers and the test.
    env = served_env(tmp_path / "var", OMP_NUM_THREADS="1")
    with make_run(env, tmp_path / "serve.log") as served:
        run = training_run_create(kind="dpo", base_model=base, export=preference_export,
                                  params={**FAST, "max_steps": 1_000_000, "save_steps": 1_000_000})
        wait_for(lambda: TrainingRun.objects.get(pk=run.pk).step >= 1 or TrainingRun.objects.get(
            pk=run.pk).status not in (JobStatus.QUEUED, JobStatus.RUNNING), timeout=240,
            message=lambda: f"the training run did not start within 240 s:\n{served.log_text()[-3000:]}")
        run.refresh_from_db()
        assert run.status == JobStatus.RUNNING, run.error + run.log_tail

        began = time.monotonic()
        export = export_create(campaign=judged, created_by=admin_user, min_judgments=2)
        wait_for(lambda: export.__class__.objects.get(pk=export.pk).status in (JobStatus.SUCCEEDED, JobStatus.FAILED),
                 timeout=EXPORT_DONE_S, message=f"the export was not done within {EXPORT_DONE_S} s beside training")
        took = time.monotonic() - began
        export.refresh_from_db()
        assert export.status == JobStatus.SUCCEEDED, export.error
        run.refresh_from_db()
        assert run.status == JobStatus.RUNNING and run.step < run.total_steps, "training held its lane throughout"
        print(f"export done in {took:.1f} s while training run {run.pk} was at step {run.step}")
    # Leaving make_run stops bin/serve as Ctrl-C does: supervisord stops the accelerator worker, which has its
    # trainer checkpoint and stop instead of leaving it to train on alone.
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "the worker was stopped" in run.error, run.error
    assert trainers_of(run) == []
    events = [json.loads(line)["event"] for line in
              Path(run.output_dir, "dpo", "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "cancelled" in events, "the trainer checkpointed where it stopped"
