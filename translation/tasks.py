"""Translation jobs as background tasks on queue "translation", in the accelerator lane: `manage.py
crossfeed_worker --lane accelerator` on a host with the translators' accelerator (docs/deploy.md)."""

from django_tasks import task

from translation.services.execution import translation_job_execute


@task(queue_name="translation")
def run_translation(job_id: int) -> str:
    return translation_job_execute(job_id=job_id).status
