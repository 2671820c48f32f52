"""Training runs as background tasks on queue "training": GPU hosts run `manage.py db_worker --queue-name training`."""

from django_tasks import task

from training.services.execution import training_run_execute


@task(queue_name="training")
def run_training(run_id: int) -> str:
    return training_run_execute(run_id=run_id).status
