"""Running a generation job on a worker: claim it, then generator by generator (one model loaded at a time) ask for
every (prompt, response language) not yet answered in outputs.jsonl, then assemble the items (assembly.py).

Every batch the backend finishes is appended to outputs.jsonl at once; between batches the backend asks
`should_stop`, which reads the job's row: a cancel request (or the worker being stopped, or another worker having
taken the job over) stops it within one batch. A request that fails (an endpoint that times out or answers garbage,
a prompt too large for the memory) is recorded in `failures` and the others go on. Retry asks only what is missing.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings

from annotation.models import JobStatus
from crossfeed.jobs import lifecycle
from crossfeed.jobs.lifecycle import Attempt, job_execute
from generation.backends.base import Backend, GenerationStopped, Output, Request, SamplingParams
from generation.models import Endpoint, GenerationJob
from generation.prompting import prompt_messages
from generation.services.assembly import JobFailed, generation_job_assemble
from generation.services.outputs import OutputsFile, Unit
from generation.services.validation import Prompt, language_names

logger = logging.getLogger(__name__)
MAX_FAILURES_KEPT = 100
KEPT = "the outputs so far are kept and Retry continues after them"
KEPT_SENTENCE = "The outputs so far are kept; Retry continues after them."


class Tracker(lifecycle.Tracker):
    """Progress, failures and throughput of one attempt (crossfeed/jobs/lifecycle.py), counted per prompt."""

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
        self.beat_if_due()


def generation_job_execute(*, job_id: int) -> GenerationJob:
    """The task body: run a queued job to its end (succeeded, failed or cancelled, with the reason)."""
    return job_execute(model=GenerationJob, job_id=job_id, label="generation job", kept=KEPT,
                       kept_sentence=KEPT_SENTENCE, body=_execute)


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
    return tracker.stopped_outcome(KEPT)


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
    if settings.CROSSFEED_GENERATION_BACKEND == "vllm":
        from generation.backends.vllm_backend import VllmBackend, vllm_available

        if vllm_available():
            return VllmBackend(spec, label=label)
        logger.warning("CROSSFEED_GENERATION_BACKEND=vllm, but vLLM or CUDA is not available here: %s is generated "
                       "with transformers", label)
    from generation.backends.transformers_backend import TransformersBackend

    return TransformersBackend(spec, label=label, batch_size=settings.CROSSFEED_GENERATION_BATCH_SIZE)


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
