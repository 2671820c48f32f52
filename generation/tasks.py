"""Generation jobs as background tasks on queue "generation", in the accelerator lane: `manage.py crossfeed_worker
--lane accelerator` on a host with the models' accelerator (docs/deploy.md)."""

from django_tasks import task

from generation.services.execution import generation_job_execute


@task(queue_name="generation")
def run_generation(job_id: int) -> str:
    return generation_job_execute(job_id=job_id).status
