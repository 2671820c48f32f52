"""Evaluation runs as background tasks on queue "evaluation": `manage.py db_worker --queue-name evaluation` on a
host with the model's accelerator."""

from django_tasks import task

from evaluation.services.execution import evaluation_run_execute


@task(queue_name="evaluation")
def run_evaluation(run_id: int) -> str:
    return evaluation_run_execute(run_id=run_id).status
