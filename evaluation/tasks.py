"""Evaluation runs as background tasks on queue "evaluation", in the accelerator lane: `manage.py crossfeed_worker
--lane accelerator` on a host with the model's accelerator (docs/deploy.md)."""

from django_tasks import task

from evaluation.services.execution import evaluation_run_execute


@task(queue_name="evaluation")
def run_evaluation(run_id: int) -> str:
    return evaluation_run_execute(run_id=run_id).status
