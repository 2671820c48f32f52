"""Translation jobs: create (every input checked before anything is stored), cancel, retry, fail the stale ones,
and the job as the API shows it. The work itself is translation/services/execution.py's; the choice and the report
choice.py's.

A job's folder (VAR_DIR/translation/job-<id>/) holds outputs.jsonl: every forward and back translation, appended as
the translators hand them over (generation's OutputsFile), so a cancelled or crashed job keeps them and Retry asks
only for what is missing.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.languages import normalize_language_code
from annotation.models import Language
from crossfeed.errors import Conflict, InvalidInput
from crossfeed.jobs.lifecycle import job_cancel, job_retry, jobs_fail_stale
from generation.services.jobs import throughput_summary
from generation.services.validation import ID_MAX
from instructions.models import InstructionSet
from translation.models import TranslationJob, Translator
from translation.services.execution import KEPT
from translation.services.post_edit import post_edit_options_check, post_edit_report

STALE_AFTER = timedelta(minutes=10)
OUTPUTS_FILE = "outputs.jsonl"
MAX_TRANSLATORS = 8
# Requests (forward and back) a job may make: 2,000 rows x 3 fields x 2 directions x 2 translators x 40 languages.
MAX_REQUESTS = 1_000_000
DEFAULT_THRESHOLD = 0.5


def jobs_root() -> Path:
    return Path(settings.VAR_DIR) / "translation"


def outputs_path(job: TranslationJob) -> Path:
    return Path(job.output_dir) / OUTPUTS_FILE


def _check_set(instruction_set: Any) -> InstructionSet:
    found = InstructionSet.objects.ready().filter(pk=getattr(instruction_set, "pk", instruction_set)).first()
    if found is None:
        raise InvalidInput("there is no ready instruction set with this id", field="instruction_set")
    if not found.rows:
        raise InvalidInput(f"the instruction set {found.name!r} has no rows", field="instruction_set")
    return found


def _check_languages(languages: Any, source: str) -> list[str]:
    if not isinstance(languages, list) or not languages:
        raise InvalidInput('a non-empty list of language codes such as ["sw", "ar", "zh-Hans"]', field="languages")
    resolved: list[str] = []
    for code in languages:
        canonical = normalize_language_code(code) if isinstance(code, str) and code else None
        if canonical is None:
            shown = code[:40] if isinstance(code, str) else code
            raise InvalidInput(f"unknown language {shown!r}; see GET /api/v1/languages/ for the codes",
                               field="languages")
        if canonical == source:
            raise InvalidInput(f"{canonical!r} is the set's own language: nothing to translate", field="languages")
        if canonical not in resolved:
            resolved.append(canonical)
    return resolved


def _check_translators(translators: Any, flores: dict[str, str], source: str) -> list[dict[str, Any]]:
    if not isinstance(translators, list) or not translators:
        raise InvalidInput("a non-empty list of translator ids; see GET /api/v1/translators/", field="translators")
    if len(translators) > MAX_TRANSLATORS:
        raise InvalidInput(f"at most {MAX_TRANSLATORS} translators", field="translators")
    resolved = []
    for index, pk in enumerate(translators):
        if isinstance(pk, bool) or not isinstance(pk, int) or not 1 <= pk <= ID_MAX:
            raise InvalidInput(f"translators[{index}]: the id of a translator (a whole number)", field="translators")
        translator = Translator.objects.filter(pk=pk).first()
        if translator is None:
            raise InvalidInput(f"translators[{index}]: there is no translator {pk}; see GET /api/v1/translators/",
                               field="translators")
        if any(entry["translator"] == pk for entry in resolved):
            raise InvalidInput(f"translators[{index}]: translator {pk} is given twice", field="translators")
        if translator.kind == Translator.Kind.SEQ2SEQ:
            # Refused here, before queueing: the model has no language token for it and would translate into
            # whatever its first token happens to be.
            # The set's own language counts too: back-translation goes into it.
            unknown = [code for code, flores_code in flores.items() if flores_code not in translator.languages]
            if unknown:
                raise InvalidInput(f"translators[{index}]: {translator.name!r} does not know "
                                   f"{', '.join(f'{code} ({flores[code]})' for code in unknown)}: its tokenizer "
                                   "has no language token for it; leave the language or the translator out",
                                   field="translators")
        resolved.append({"translator": pk, "label": translator.name, "kind": translator.kind})
    return resolved


def _check_threshold(threshold: Any) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold) \
            or not 0 <= threshold <= 1:
        raise InvalidInput("a number from 0 to 1", field="quality_threshold")
    return float(threshold)


def _check_post_edit(post_edit: Any) -> dict[str, Any]:
    """{campaign_name, overlap, audit_rate} for a campaign made when the job succeeds ({} for none). The name is
    checked now too, so that a clash is said before hours of translation; it is checked again at the end."""
    if post_edit is None:
        return {}
    if not isinstance(post_edit, dict) or "campaign_name" not in post_edit:
        raise InvalidInput('an object {"campaign_name": "...", "overlap": 1, "audit_rate": 0.0} (overlap and '
                           "audit_rate optional), or leave post_edit out", field="post_edit")
    unknown = sorted(set(post_edit) - {"campaign_name", "overlap", "audit_rate"})
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(repr(key[:40]) for key in unknown[:5])}: campaign_name, "
                           "overlap and audit_rate are known", field="post_edit")
    name, overlap, audit_rate = post_edit_options_check(
        campaign_name=post_edit["campaign_name"], overlap=post_edit.get("overlap", 1),
        audit_rate=post_edit.get("audit_rate", 0.0), field="post_edit")
    return {"campaign_name": name, "overlap": overlap, "audit_rate": audit_rate}


def translation_job_create(*, instruction_set: Any, languages: Any, translators: Any, quality_threshold: Any = None,
                           post_edit: Any = None, created_by=None, enqueue: bool = True) -> TranslationJob:
    """Check everything (InvalidInput naming the field), then store the job and queue it."""
    found = _check_set(instruction_set)
    codes = _check_languages(languages, found.language_id)
    flores = dict(Language.objects.filter(code__in=[*codes, found.language_id]).values_list("code", "flores_code"))
    resolved = _check_translators(translators, flores, found.language_id)
    threshold = _check_threshold(quality_threshold)
    post_edit_options = _check_post_edit(post_edit)
    from translation.services.choice import comet_settings_problem
    from translation.services.execution import request_count

    # Refused now rather than scored on the fallback's scale hours later without anyone having asked for it.
    problem = comet_settings_problem()
    if problem is not None:
        raise Conflict(f"COMET-Kiwi is configured but cannot run: {problem}. No job was created.")

    total = request_count(found, len(codes), len(resolved))
    if total > MAX_REQUESTS:
        raise InvalidInput(f"{total} translation requests; at most {MAX_REQUESTS} per job: fewer languages or "
                           "translators per job", field="languages")
    with transaction.atomic():
        job = TranslationJob.objects.create(
            instruction_set=found, languages=codes, translators=resolved, quality_threshold=threshold,
            progress_total=total, post_edit=post_edit_options,
            created_by=created_by if created_by is not None and created_by.is_authenticated else None)
        job.output_dir = str(jobs_root() / f"job-{job.pk}")
        job.save(update_fields=["output_dir"])
        # A folder left by a job of the same id (a database reset since) is not this job's.
        shutil.rmtree(job.output_dir, ignore_errors=True)
        if enqueue:
            translation_job_enqueue(job)
    return job


def translation_job_enqueue(job: TranslationJob) -> None:
    from translation.tasks import run_translation

    # After commit: a worker must never pick up a job whose row it cannot see yet.
    transaction.on_commit(lambda: run_translation.enqueue(job.pk))


def translation_job_cancel(*, job: TranslationJob) -> TranslationJob:
    """A queued job is cancelled at once; a running one stops after the batch in hand, keeping its outputs."""
    return job_cancel(job=job, label="translation job")


def translation_job_retry(*, job: TranslationJob) -> TranslationJob:
    """Queue a failed or cancelled job again; it asks only for what is not in its outputs yet."""
    return job_retry(job=job, label="translation job", enqueue=translation_job_enqueue)


def translation_jobs_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Fail the running jobs whose worker is gone (no heartbeat for `stale_after`, or its process on this host
    ended), with the reason; Retry continues after their outputs."""
    return jobs_fail_stale(model=TranslationJob, kept=KEPT, now=now, stale_after=stale_after)


def translation_job_payload(job: TranslationJob) -> dict[str, Any]:
    """The job as GET /api/v1/translation-jobs/{id}/ answers it (docs/api.md, "Instruction translation")."""
    return {
        "id": job.pk,
        "status": job.status,
        "instruction_set": job.instruction_set_id,
        "languages": job.languages,
        "translators": job.translators,
        "quality_threshold": job.quality_threshold,
        "progress": {"done": job.progress_done, "total": job.progress_total, "percent": job.percent},
        "per_language": _per_language(job),
        "throughput": throughput_summary(job.throughput),
        "failures": job.failures,
        "failure_count": job.failure_count,
        "error": job.error,
        "attempts": job.attempts,
        "created_by": job.created_by.get_username() if job.created_by_id else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "post_edit_campaign": job.post_edit_campaign_id,
    }


def _per_language(job: TranslationJob) -> dict[str, dict[str, Any]]:
    """The report written when the job succeeded, with the post-editing counts of now (they change with every
    submission): post_edit {pending, accepted, edited, unusable, mean_edit_distance}, and post_edited (done)."""
    if not job.per_language:
        return {}
    live = post_edit_report(job)
    per_language = {}
    for code, report in job.per_language.items():
        counts = live.get(code, {"pending": 0, "accepted": 0, "edited": 0, "unusable": 0, "mean_edit_distance": None})
        per_language[code] = {**report, "post_edit": counts,
                              "post_edited": counts["accepted"] + counts["edited"] + counts["unusable"]}
    return per_language
