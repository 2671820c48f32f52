"""Instruction set exports as background tasks on queue "exports", which the fast lane serves (`manage.py
crossfeed_worker --lane fast`): writing JSONL needs no accelerator, and never waits behind a training run."""

from django_tasks import task

from instructions.services.exports import instruction_export_run


@task(queue_name="exports")
def run_instruction_export(export_id: int) -> str:
    return instruction_export_run(export_id=export_id).status
