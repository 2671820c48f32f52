"""Running a generation job on a worker: claim it, then generator by generator (one model loaded at a time) ask for
every (prompt, response language) not yet answered in outputs.jsonl, then assemble the items (assembly.py).

Every batch the backend finishes is appended to outputs.jsonl at once; between batches the backend asks
`should_stop`, which reads the job's row: a cancel request (or the worker being stopped, or another worker having
taken the job over) stops it within one batch. A request that fails (an endpoint that times out or answers garbage,
a prompt too large for the memory) is recorded in `failures` and the others go on. Retry asks only what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from annotation.models import JobStatus
from crossfeed.jobs.shutdown import stop_requested
from generation.backends.base import Backend, GenerationStopped, Output, Request, SamplingParams, Throughput
from generation.models import Endpoint, GenerationJob
from generation.prompting import prompt_messages
from generation.services.assembly import JobFailed, generation_job_assemble
from generation.services.outputs import OutputsFile, Unit
from generation.services.validation import Prompt, language_names

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
MAX_FAILURES_KEPT = 100
KEPT = "the outputs so far are kept and Retry continues after them"
KEPT_SENTENCE = "The outputs so far are kept; Retry continues after them."


class Stop:
    """Why a job stopped before its end."""

    CANCEL = "cancel"
    WORKER_STOPPED = "worker stopped"
    TAKEN_OVER = "taken over"


@dataclass(frozen=True)
class Attempt:
    """This worker's claim on a job: the job is its own while it is running with this attempt number."""

    job_id: int
    number: int

    def owned(self):
        return GenerationJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, attempts=self.number)


@dataclass
class Tracker:
    """Progress, failures and throughput of one attempt, written to the job's row at most every HEARTBEAT_SECONDS
    (and when forced)."""

    attempt: Attempt
    total: int
    done: int
    throughput: dict[str, dict] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    failure_count: int = 0
    last_beat: float = 0.0
    stop_reason: str | None = None

    def record(self, outputs: list[Output], units: dict[str, Unit], labels: list[str],
               prompts: list[Prompt]) -> None:
        failed: dict[str, str] = {}
        for output in outputs:
            if output.error:
                failed.setdefault(output.key, output.error)
        for key, message in failed.items():
            unit = units[key]
            self.failure_count += 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append({"external_id": prompts[unit.prompt].external_id,
                                      "generator": labels[unit.generator], "language": unit.language,
                                      "message": message[:1000]})
        self.done += len({output.key for output in outputs})
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.beat()

    def add_throughput(self, label: str, measured: Throughput) -> None:
        before = self.throughput.get(label, {})
        total = Throughput(prompts=before.get("prompts", 0), outputs=before.get("outputs", 0),
                           new_tokens=before.get("new_tokens", 0), seconds=before.get("seconds", 0.0))
        total.add(measured)
        self.throughput[label] = total.as_dict()

    def beat(self) -> bool:
        """Write the progress; False when the job is no longer this attempt's."""
        self.last_beat = time.monotonic()
        return bool(self.attempt.owned().update(
            progress_done=min(self.done, self.total), progress_total=self.total, failures=self.failures,
            failure_count=self.failure_count, throughput=self.throughput, heartbeat_at=timezone.now(),
        ))

    def should_stop(self) -> bool:
        """Asked by the backend between batches: one indexed read of the job's row."""
        if stop_requested.is_set():
            self.stop_reason = Stop.WORKER_STOPPED
        else:
            row = self.attempt.owned().values_list("cancel_requested", flat=True).first()
            if row is None:
                self.stop_reason = Stop.TAKEN_OVER
            elif row:
                self.stop_reason = Stop.CANCEL
        return self.stop_reason is not None


def generation_job_execute(*, job_id: int) -> GenerationJob:
    """The task body: run a queued job to its end (succeeded, failed or cancelled, with the reason)."""
    now = timezone.now()
    # A conditional UPDATE claims the job: of two workers handed the same task, only one gets a row count of 1.
    claimed = GenerationJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}", cancel_requested=False, error="", failures=[],
        failure_count=0,
    )
    job = GenerationJob.objects.get(pk=job_id)
    if not claimed:
        logger.info("generation job %s is %s, not queued: not running it", job_id, job.status)
        return job
    attempt = Attempt(job.pk, job.attempts)
    try:
        outcome = _execute(job, attempt)
    except JobFailed as exc:
        outcome = (JobStatus.FAILED, exc.message)
    except Exception as exc:  # a bug, a missing model, the database: the job must not stay "running"
        logger.exception("generation job %s crashed in the worker", job_id)
        outcome = (JobStatus.FAILED, f"{type(exc).__name__}: {exc}. {KEPT_SENTENCE}")
    except BaseException:  # the worker exits at once (a second SIGTERM)
        with contextlib.suppress(Exception):
            attempt.owned().update(status=JobStatus.FAILED, finished_at=timezone.now(),
                                   error=f"the worker was stopped while the job ran; {KEPT}")
        raise
    if outcome is None:
        logger.warning("generation job %s was marked by someone else while attempt %s ran (stale check?): nothing "
                       "more is written", job_id, attempt.number)
    else:
        status, error = outcome
        attempt.owned().update(status=status, error=error, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def _execute(job: GenerationJob, attempt: Attempt) -> tuple[str, str] | None:
    from generation.services.jobs import outputs_path, read_prompts

    prompts = read_prompts(job)
    units = {unit.key: unit for unit in plan_units(job, prompts)}
    outputs = OutputsFile(outputs_path(job))
    pending = [unit for unit in units.values() if unit.key not in outputs.done]
    tracker = Tracker(attempt=attempt, total=len(units), done=len(units) - len(pending),
                      throughput=dict(job.throughput or {}))
    tracker.beat()
    for index in range(len(job.generators)):
        todo = [unit for unit in pending if unit.generator == index]
        if todo:
            _generate(job, index, todo, prompts, units, outputs, tracker)
        if tracker.stop_reason is not None:
            break
    if tracker.stop_reason is None and not tracker.should_stop():
        tracker.beat()
        generation_job_assemble(job=job, prompts=prompts, records=outputs.records())
        return JobStatus.SUCCEEDED, ""
    tracker.beat()
    if tracker.stop_reason == Stop.CANCEL:
        return JobStatus.CANCELLED, f"cancelled; {KEPT}"
    if tracker.stop_reason == Stop.WORKER_STOPPED:
        return JobStatus.FAILED, f"the worker was stopped (a restart or shutdown of the worker); {KEPT}"
    return None


def plan_units(job: GenerationJob, prompts: list[Prompt]) -> list[Unit]:
    return [Unit(generator=index, prompt=number, language=language)
            for index in range(len(job.generators))
            for number, prompt in enumerate(prompts) for language in prompt.response_languages]


def _generate(job: GenerationJob, index: int, todo: list[Unit], prompts: list[Prompt], units: dict[str, Unit],
              outputs: OutputsFile, tracker: Tracker) -> None:
    labels = [generator["label"] for generator in job.generators]
    requests = [Request(key=unit.key, messages=unit_messages(job, prompts[unit.prompt], unit.language),
                        samples=job.samples_per_generator) for unit in todo]

    def save(batch: list[Output]) -> None:
        outputs.append(_record(units[output.key], output) for output in batch if output.key in units)
        tracker.record([output for output in batch if output.key in units], units, labels, prompts)

    backend = build_backend(job.generators[index])
    try:
        measured = backend.generate(requests, SamplingParams(**job.params), on_outputs=save,
                                    should_stop=tracker.should_stop)
    except GenerationStopped:
        return
    finally:
        backend.close()
    tracker.add_throughput(labels[index], measured)


def unit_messages(job: GenerationJob, prompt: Prompt, language: str) -> list[dict[str, str]]:
    name, autonym = language_names(language)
    return prompt_messages(prompt.text, language_name=name, autonym=autonym, template=job.instruction_template)


def _record(unit: Unit, output: Output) -> dict[str, Any]:
    return {"key": unit.key, "generator": unit.generator, "prompt": unit.prompt, "language": unit.language,
            "sample": output.sample, "text": output.text, "new_tokens": output.new_tokens,
            "truncated": output.truncated, "error": output.error, "seconds": round(output.seconds, 3)}


def build_backend(generator: dict[str, Any]) -> Backend:
    """The backend of one generator: the endpoint client, or the model loaded with transformers (vLLM where the
    operator asks for it with CROSSFEED_GENERATION_BACKEND=vllm and it is installed)."""
    label = generator["label"]
    if "endpoint" in generator:
        return _endpoint_backend(generator["endpoint"], label)
    from evaluation.services.runs import spec_for
    from training.models import BaseModel, ModelVersion

    if "model_version" in generator:
        version = ModelVersion.objects.select_related("base_model").filter(pk=generator["model_version"]).first()
        if version is None:
            raise JobFailed(f"the model version {label!r} was deleted after the job was created")
        spec = spec_for(base_model=version.base_model, model_version=version)
    else:
        base = BaseModel.objects.filter(pk=generator["base_model"]).first()
        if base is None:
            raise JobFailed(f"the base model {label!r} was deleted after the job was created")
        spec = spec_for(base_model=base, model_version=None)
    if getattr(settings, "CROSSFEED_GENERATION_BACKEND", "transformers") == "vllm":
        from generation.backends.vllm_backend import VllmBackend, vllm_available

        if vllm_available():
            return VllmBackend(spec, label=label)
        logger.warning("CROSSFEED_GENERATION_BACKEND=vllm, but vLLM or CUDA is not available here: %s is generated "
                       "with transformers", label)
    from generation.backends.transformers_backend import TransformersBackend

    return TransformersBackend(spec, label=label, batch_size=getattr(settings, "CROSSFEED_GENERATION_BATCH_SIZE", 8))


def _endpoint_backend(endpoint_id: int, label: str) -> Backend:
    from generation.backends.endpoint import EndpointBackend

    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise JobFailed(f"the endpoint {label!r} was deleted after the job was created")
    api_key = None
    if endpoint.api_key_env:
        from generation.services.endpoints import key_variable_problem

        # Checked again here: a row written around the checks (a shell, a data migration) must not make the worker
        # send one of Crossfeed's own secrets to the endpoint.
        if problem := key_variable_problem(endpoint.api_key_env):
            raise JobFailed(f"the endpoint {endpoint.name!r}: {problem}")
        api_key = os.environ.get(endpoint.api_key_env)
        if not api_key:
            raise JobFailed(f"the endpoint {endpoint.name!r} needs its key in the environment variable "
                               f"{endpoint.api_key_env}, which is not set for this worker; set it and Retry")
    return EndpointBackend(label=label, base_url=endpoint.base_url, model=endpoint.model, api_key=api_key,
                           timeout=endpoint.timeout_seconds, max_retries=endpoint.max_retries,
                           concurrency=endpoint.concurrency,
                           allowed_hosts=settings.CROSSFEED_GENERATION_ALLOWED_HOSTS)
