"""Generation jobs: create (every input checked before anything is stored), cancel, retry, fail the stale ones, and
the job as the API and the pages show it.

A job's folder (VAR_DIR/generation/job-<id>/) holds prompts.jsonl, written at creation (each prompt with the
response languages resolved for it), and outputs.jsonl, appended to by the worker as the models answer
(generation/services/execution.py); at the end the answers are checked and imported as the campaign's items
(generation/services/assembly.py).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from crossfeed.jobs.lifecycle import job_cancel, job_retry, jobs_fail_stale, worker_gone  # noqa: F401 - named here
from generation.backends.base import Throughput
from generation.models import GenerationJob
from generation.prompting import INSTRUCTION_TEMPLATE
from generation.services.execution import (
    KEPT,
    generation_job_execute,  # noqa: F401 - the task body, named here
)
from generation.services.validation import JobInput, Prompt, check_job_input
from training.models import TrainingRun

# Each batch beats the heart; a batch of 8 answers of 4,096 tokens from a 7B model takes minutes on a CPU.
STALE_AFTER = timedelta(minutes=10)
PROMPTS_FILE = "prompts.jsonl"
OUTPUTS_FILE = "outputs.jsonl"


def jobs_root() -> Path:
    return Path(settings.VAR_DIR) / "generation"


def prompts_path(job: GenerationJob) -> Path:
    return Path(job.output_dir) / PROMPTS_FILE


def outputs_path(job: GenerationJob) -> Path:
    return Path(job.output_dir) / OUTPUTS_FILE


def read_prompts(job: GenerationJob) -> list[Prompt]:
    prompts = []
    with prompts_path(job).open(encoding="utf-8") as handle:
        for line in handle:
            value = json.loads(line)
            pivot = value.get("pivot") or {}
            prompts.append(Prompt(external_id=value["external_id"], text=value["text"], language=value["language"],
                                  pivot_text=pivot.get("text", ""), pivot_language=pivot.get("language"),
                                  response_languages=tuple(value["response_languages"])))
    return prompts


def generation_job_create(
    *,
    generators: list[dict],
    prompts: dict,
    campaign: dict,
    response_languages: list | dict | None = None,
    languages_per_prompt: int | None = None,
    samples_per_generator: int = 1,
    params: dict | None = None,
    off_target: str = GenerationJob.OffTarget.KEEP,
    training_run: TrainingRun | None = None,
    created_by=None,
    enqueue: bool = True,
) -> GenerationJob:
    """Check everything (InvalidInput naming the field), then store the job and its prompts.jsonl and queue it.

    prompts: {"campaign": id} (one prompt per distinct prompt of its items) or {"items": [{external_id, text,
    language, pivot?: {text, language}}]}; campaign: {"name", "overlap"?} (made when the job ends) or {"id"}.
    """
    checked = check_job_input(
        generators=generators, prompts=prompts, response_languages=response_languages,
        languages_per_prompt=languages_per_prompt, samples_per_generator=samples_per_generator, params=params,
        campaign=campaign, off_target=off_target,
    )
    folder = None
    try:
        with transaction.atomic():
            job = _store(checked, training_run=training_run, created_by=created_by)
            folder = Path(job.output_dir)
            _write_prompts(folder, checked.prompts)
            if enqueue:
                generation_job_enqueue(job)
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # no job row: no folder either
        raise
    return job


def _store(checked: JobInput, *, training_run: TrainingRun | None, created_by) -> GenerationJob:
    job = GenerationJob.objects.create(
        generators=checked.generators, prompt_source=checked.prompt_source, source_campaign=checked.source_campaign,
        response_languages=checked.response_languages, languages_per_prompt=checked.languages_per_prompt,
        samples_per_generator=checked.samples_per_generator, params=checked.params,
        instruction_template=INSTRUCTION_TEMPLATE, off_target=checked.off_target, campaign=checked.campaign,
        campaign_name=checked.campaign_name, campaign_overlap=checked.campaign_overlap, training_run=training_run,
        progress_total=checked.requests,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    job.output_dir = str(jobs_root() / f"job-{job.pk}")
    job.save(update_fields=["output_dir"])
    return job


def _write_prompts(folder: Path, prompts: list[Prompt]) -> None:
    # A folder left by a job of the same id (a database reset since) is not this job's.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / PROMPTS_FILE
    with path.open("w", encoding="utf-8") as handle:
        for prompt in prompts:
            handle.write(json.dumps(prompt.as_dict(), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def generation_job_enqueue(job: GenerationJob) -> None:
    from generation.tasks import run_generation

    # After commit: a worker must never pick up a job whose row it cannot see yet.
    transaction.on_commit(lambda: run_generation.enqueue(job.pk))


def generation_job_cancel(*, job: GenerationJob) -> GenerationJob:
    """A queued job is cancelled at once; a running one stops after the batch in hand, keeping its outputs."""
    return job_cancel(job=job, label="generation job")


def generation_job_retry(*, job: GenerationJob) -> GenerationJob:
    """Queue a failed or cancelled job again; it generates only what is not in its outputs yet."""
    return job_retry(job=job, label="generation job", enqueue=generation_job_enqueue)


def generation_jobs_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Fail the running jobs whose worker is gone, with the reason; Retry continues after their outputs.

    Gone: no heartbeat for `stale_after`, or at once when the worker ran on this host and its process no longer
    exists (killed, out of memory; the accelerator lane runs this when its worker starts)."""
    return jobs_fail_stale(model=GenerationJob, kept=KEPT, now=now, stale_after=stale_after)


def generation_job_payload(job: GenerationJob) -> dict[str, Any]:
    """The job as GET /api/v1/generation-jobs/{id}/ answers it (docs/api.md), also used by the pages."""
    return {
        "id": job.pk,
        "status": job.status,
        "progress": {"done": job.progress_done, "total": job.progress_total, "percent": job.percent},
        "campaign": job.campaign_id,
        "campaign_name": job.campaign.name if job.campaign_id else job.campaign_name,
        "items_created": job.items_created,
        "responses_created": job.responses_created,
        "off_target": job.off_target_count,
        "off_target_policy": job.off_target,
        "duplicates_merged": job.duplicates_merged,
        "empty": job.empty_count,
        "truncated": job.truncated_count,
        "skipped": job.skipped,
        "skipped_count": job.skipped_count,
        "failures": job.failures,
        "failure_count": job.failure_count,
        "throughput": throughput_summary(job.throughput),
        "generators": job.generators,
        "prompt_source": job.prompt_source,
        "response_languages": job.response_languages,
        "languages_per_prompt": job.languages_per_prompt,
        "samples_per_generator": job.samples_per_generator,
        "params": job.params,
        "instruction_template": job.instruction_template,
        "training_run": job.training_run_id,
        "error": job.error,
        "attempts": job.attempts,
        "worker": job.worker,
        "created_by": job.created_by.get_username() if job.created_by_id else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def throughput_summary(per_generator: dict[str, dict]) -> dict[str, Any]:
    """The job's throughput over all its generators and attempts, with each generator's own."""
    total = Throughput()
    for values in per_generator.values():
        total.add(Throughput(prompts=values.get("prompts", 0), outputs=values.get("outputs", 0),
                             new_tokens=values.get("new_tokens", 0), seconds=values.get("seconds", 0.0)))
    return {**total.as_dict(), "per_generator": per_generator}
