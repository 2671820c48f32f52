"""Background tasks (Django Tasks API, django-tasks-db backend). Thin: each calls one service.

Queue "exports" is served by the fast lane (`manage.py crossfeed_worker --lane fast`), never behind a training run.
"""

from django_tasks import task

from annotation.services.exports import export_run


@task(queue_name="exports")
def run_export(export_id: int) -> str:
    return export_run(export_id=export_id).status
