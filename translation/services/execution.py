"""Running a translation job on a worker: claim it, then translator by translator (one model loaded at a time)
translate every (row, language, field) not yet in outputs.jsonl, then translate each result back into the set's
language (the round trip the fallback quality score needs), then score and choose (choice.py).

Each field is protected first (instructions/segments.py: code, maths, URLs, placeholders become <x0/> masks), so
the translator sees masks and the forward output is stored masked; the back-translation is asked of that masked
output, and both are restored at the end. Every batch is appended to outputs.jsonl at once; between batches the
backend asks `should_stop` (a cancel, the worker stopping, the job taken over), and so does COMET-Kiwi scoring
every few seconds. A request that fails (an endpoint that times out, a model out of memory) is recorded in
`failures` and the others go on; Retry asks it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from annotation.models import JobStatus, Language
from crossfeed.jobs import lifecycle
from crossfeed.jobs.lifecycle import Attempt, job_execute
from generation.backends.base import GenerationStopped, Output
from generation.services.assembly import JobFailed
from generation.services.outputs import OutputsFile
from instructions.models import InstructionRow, InstructionSet
from instructions.segments import protect
from translation.backends.seq2seq import TranslationRequest
from translation.models import TranslationJob, Translator

logger = logging.getLogger(__name__)
MAX_FAILURES_KEPT = 100
KEPT = "the translations so far are kept and Retry continues after them"


def row_fields(row: InstructionRow) -> dict[str, str]:
    """The texts of a row to translate, by field: instruction/input/output (Alpaca), m<i> (messages); empty ones
    are left out (an empty input stays empty)."""
    if row.instruction or row.output:
        fields = {"instruction": row.instruction, "input": row.input, "output": row.output}
    else:
        fields = {f"m{index}": message.get("content", "") for index, message in enumerate(row.messages or [])}
    return {name: text for name, text in fields.items() if isinstance(text, str) and text.strip()}


def request_count(instruction_set: InstructionSet, languages: int, translators: int) -> int:
    """Forward and back requests: 2 per translator, language and non-empty field."""
    fields = sum(len(row_fields(row)) for row in instruction_set.instruction_rows.all().iterator(chunk_size=2000))
    return 2 * fields * languages * translators


def request_key(translator: int, row: int, language: str, field_name: str, direction: str) -> str:
    return f"t{translator}|r{row}|{language}|{field_name}|{direction}"


class Tracker(lifecycle.Tracker):
    """Progress, failures and throughput of one attempt (crossfeed/jobs/lifecycle.py), counted per request."""

    def record(self, outputs: list[Output], label: str, about: dict[str, dict]) -> None:
        for output in outputs:
            if output.error:
                self.failure_count += 1
                if len(self.failures) < MAX_FAILURES_KEPT:
                    self.failures.append({**about[output.key], "translator": label, "message": output.error[:1000]})
        self.done += len(outputs)
        self.beat_if_due()


def translation_job_execute(*, job_id: int) -> TranslationJob:
    """The task body: run a queued job to its end (succeeded, failed or cancelled, with the reason)."""
    def body(job: TranslationJob, attempt: Attempt) -> tuple[str, str] | None:
        tracker = Tracker(attempt=attempt, total=job.progress_total, done=0, throughput=dict(job.throughput or {}))
        return _execute(job, tracker)

    job = job_execute(model=TranslationJob, job_id=job_id, label="translation job", kept=KEPT,
                      kept_sentence="The translations so far are kept; Retry continues after them.", body=body,
                      queryset=TranslationJob.objects.select_related("instruction_set"))
    if job.status == JobStatus.SUCCEEDED and job.post_edit and job.post_edit_campaign_id is None:
        _post_edit_campaign(job)
    return job


def _post_edit_campaign(job: TranslationJob) -> None:
    """The post-editing campaign asked for at creation, made once the job has succeeded. A failure (the name was
    taken meanwhile, nothing fell below the threshold) is written into the job's error; the job stays succeeded,
    and the admin can still send its translations to post-editing by hand (POST_EDIT_BY_HAND)."""
    from crossfeed.errors import InvalidInput
    from translation.services.post_edit import post_edit_campaign_create

    options = job.post_edit
    try:
        post_edit_campaign_create(job=job, campaign_name=options.get("campaign_name", ""),
                                  overlap=options.get("overlap", 1), audit_rate=options.get("audit_rate", 0.0),
                                  created_by=job.created_by)
    except InvalidInput as exc:
        message = f"{POST_EDIT_NOT_MADE}{exc.field + ': ' if exc.field else ''}{exc.message}. {POST_EDIT_BY_HAND}"
        logger.warning("translation job %s: %s", job.pk, message)
    except Exception as exc:  # the database, a bug: the translations are still good, the job still succeeded
        logger.exception("translation job %s: the post-editing campaign failed", job.pk)
        message = f"{POST_EDIT_NOT_MADE}{type(exc).__name__}: {exc}. {POST_EDIT_BY_HAND}"
    else:
        message = ""
    if message:
        TranslationJob.objects.filter(pk=job.pk).update(error=message[:5000])
    job.refresh_from_db()


POST_EDIT_NOT_MADE = "The translations are done, but the post-editing campaign was not made: "
POST_EDIT_BY_HAND = ("Send them to post-editing from the job's page, or with "
                     "translation.services.post_edit.post_edit_campaign_create.")


@dataclass
class Plan:
    """What the job translates: rows, their protected fields, the languages' FLORES codes and names."""

    source: str
    rows: list[InstructionRow]
    masked: dict[tuple[int, str], tuple[str, list]]  # (row index, field) -> (masked text, segments)
    flores: dict[str, str]
    names: dict[str, str]  # FLORES code -> English name


def make_plan(job: TranslationJob) -> Plan:
    instruction_set = job.instruction_set
    rows = list(instruction_set.instruction_rows.order_by("index"))
    masked = {(row.index, name): protect(text) for row in rows for name, text in row_fields(row).items()}
    languages = Language.objects.filter(code__in=[*job.languages, instruction_set.language_id])
    flores = {language.code: language.flores_code for language in languages}
    names = {language.flores_code: language.name for language in languages}
    return Plan(source=instruction_set.language_id, rows=rows, masked=masked, flores=flores, names=names)


def _execute(job: TranslationJob, tracker: Tracker) -> tuple[str, str] | None:
    from translation.services.choice import translation_job_choose
    from translation.services.jobs import outputs_path

    plan = make_plan(job)
    outputs = OutputsFile(outputs_path(job))
    texts = {record["key"]: record for record in outputs.records() if not record.get("error")}
    tracker.done = len(texts)
    tracker.beat()
    for index, entry in enumerate(job.translators):
        translator = Translator.objects.filter(pk=entry["translator"]).first()
        if translator is None:
            raise JobFailed(f"the translator {entry['label']!r} was deleted after the job was created")
        _translate(job, index, translator, plan, outputs, texts, tracker)
        if tracker.stop_reason is not None:
            break
    if tracker.stop_reason is None and not tracker.should_stop():
        tracker.beat()
        # COMET-Kiwi may score for many minutes: it asks should_stop meanwhile, and None means it was stopped.
        if translation_job_choose(job=job, plan=plan, records=texts, should_stop=tracker.should_stop) is not None:
            return JobStatus.SUCCEEDED, ""
    return tracker.stopped_outcome(KEPT)


def _translate(job: TranslationJob, index: int, translator: Translator, plan: Plan, outputs: OutputsFile,
               texts: dict[str, dict], tracker: Tracker) -> None:
    from translation.services.engines import Engine

    source = plan.flores[plan.source]
    forward, about = [], {}
    for row in plan.rows:
        for language in job.languages:
            for field_name in row_fields(row):
                key = request_key(index, row.index, language, field_name, "f")
                about[key] = {"external_id": row.external_id, "language": language, "field": field_name}
                if key not in texts:
                    forward.append(TranslationRequest(key, plan.masked[(row.index, field_name)][0], source,
                                                      plan.flores[language]))
    engine = Engine(translator, plan.names)
    try:
        _run(engine, forward, outputs, texts, tracker, about)
        if tracker.stop_reason is not None:
            return
        back = []
        for key, record in list(texts.items()):
            back_key = key[:-1] + "b"
            if key.startswith(f"t{index}|") and key.endswith("|f") and back_key not in texts:
                about[back_key] = about.get(key, {})
                back.append(TranslationRequest(back_key, record["text"], plan.flores[record["language"]], source))
        _run(engine, back, outputs, texts, tracker, about)
    finally:
        engine.close()


def _run(engine: Any, requests: list[TranslationRequest], outputs: OutputsFile, texts: dict[str, dict],
         tracker: Tracker, about: dict[str, dict]) -> None:
    if not requests:
        return
    languages = {request.key: request for request in requests}

    def save(batch: list[Output]) -> None:
        batch = [output for output in batch if output.key in languages and output.sample == 0]
        records = [{"key": output.key, "language": about[output.key].get("language", ""),
                    "text": output.text, "new_tokens": output.new_tokens, "truncated": output.truncated,
                    "error": output.error, "seconds": round(output.seconds, 3)} for output in batch]
        outputs.append(records)
        texts.update((record["key"], record) for record in records if not record["error"])
        tracker.record(batch, engine.label, about)

    try:
        measured = engine.translate(requests, on_outputs=save, should_stop=tracker.should_stop)
    except GenerationStopped:
        return
    tracker.add_throughput(engine.label, measured)
