"""Training runs as background tasks on queue "training", in the accelerator lane: each GPU host runs
`manage.py crossfeed_worker --lane accelerator` (docs/deploy.md)."""

from django_tasks import task

from training.services.execution import training_run_execute


@task(queue_name="training")
def run_training(run_id: int) -> str:
    return training_run_execute(run_id=run_id).status
