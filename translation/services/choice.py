"""Scoring every candidate and choosing one per (row, language), and the job's report per language.

A candidate is one translator's translation of every field of a row into one language. Each field is restored
(segments.restore) and scored with instructions/quality.py's estimate_quality (the back-translation restored too,
for the round trip); the candidate's score is the fields' mean weighted by their source length, its flags the union
of theirs, plus `segments_lost` when a protected segment did not come back intact. A candidate is acceptable when
its translator answered every field, no hard failure was flagged (empty, wrong language or script, a copy of the
source, truncated) and no segment was lost; choose_best picks among the acceptable ones. A row with none is kept
with chosen False (the best of what there was, for review), counted as `not_acceptable`, never chosen silently.

With COMET-Kiwi configured (settings.COMET_PYTHON and COMET_MODEL), every non-empty field of every candidate is
scored in one call of translation/backends/comet_score.py, and a field's score is its COMET score capped by the
fallback's hard failures (quality.comet_quality). Each candidate and the report name the scorer
("comet-kiwi:<model>" or "fallback"). A COMET call that fails at run time does not fail the job: the failure goes
into the job's failures, every candidate is scored with the fallback, and the report says so (scorer_error).
The call asks the job's `should_stop` every comet_score.POLL_SECONDS: a cancel or a worker stop while COMET scores
kills the scorer, and nothing is stored (translation_job_choose returns None; the job ends as after a stop between
batches, its outputs kept for Retry).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import JobStatus
from instructions.quality import QualityScore, choose_best, comet_quality, estimate_quality
from instructions.segments import restore
from translation.backends.comet_score import (
    CometConfig,
    CometFailed,
    CometStopped,
    CometUnavailable,
    comet_problem,
    comet_score,
)
from translation.models import Translation, TranslationJob
from translation.services.execution import Plan, request_key, row_fields

logger = logging.getLogger(__name__)
SEGMENTS_LOST = "segments_lost"
FAILED = "translator_failed"
HISTOGRAM_BINS = 10
FALLBACK = "fallback"
COMET_FELL_BACK = "COMET-Kiwi scoring failed, so every candidate was scored with the fallback instead: "


def comet_config() -> CometConfig | None:
    """The COMET-Kiwi scorer the settings configure; None when both settings are empty (the fallback score)."""
    if not settings.COMET_PYTHON and not settings.COMET_MODEL:
        return None
    return CometConfig(settings.COMET_PYTHON, settings.COMET_MODEL, float(settings.COMET_TIMEOUT))


def comet_settings_problem() -> str | None:
    """What is wrong with CROSSFEED_COMET_PYTHON / CROSSFEED_COMET_MODEL (None: unset, or they work as far as can
    be seen without loading the model); a job is refused at creation while there is something."""
    return comet_problem(settings.COMET_PYTHON, settings.COMET_MODEL)


def _restored(plan: Plan, index: int, row: Any, language: str, name: str,
              records: dict[str, dict]) -> tuple[str, list] | None:
    forward = records.get(request_key(index, row.index, language, name, "f"))
    return None if forward is None else restore(forward["text"], plan.masked[(row.index, name)][1])


def _comet_scores(job: TranslationJob, plan: Plan, records: dict[str, dict],
                  should_stop: Callable[[], bool] | None = None) -> tuple[dict | None, str, str]:
    """(COMET score per (translator index, row index, language, field), the scorer, the error): (None, "fallback",
    "") when COMET is not configured, (None, "fallback", why) when it failed. Raises CometStopped when
    `should_stop` said stop while it scored."""
    config = comet_config()
    if config is None:
        return None, FALLBACK, ""
    keys, pairs = [], []
    for index in range(len(job.translators)):
        for language in job.languages:
            for row in plan.rows:
                for name, source_text in row_fields(row).items():
                    restored = _restored(plan, index, row, language, name, records)
                    if restored is not None and restored[0].strip():
                        keys.append((index, row.index, language, name))
                        pairs.append((source_text, restored[0]))

    def beat(done: int) -> None:
        # Scoring a large job takes long: the heartbeat keeps the stale check from taking the job for dead.
        TranslationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())

    try:
        scores = comet_score(config, pairs, on_progress=beat, should_stop=should_stop)
    except (CometUnavailable, CometFailed) as exc:
        logger.warning("translation job %s: %s", job.pk, exc)
        return None, FALLBACK, str(exc)
    return dict(zip(keys, scores, strict=True)), config.scorer, ""


def _candidate(job: TranslationJob, plan: Plan, index: int, row: Any, language: str, records: dict[str, dict],
               comet: dict | None = None) -> tuple[QualityScore | None, dict[str, str], str]:
    """(score or None when a field failed, the restored fields, the error)."""
    fields, scores, weights, flags = {}, [], [], set()
    for name, source_text in row_fields(row).items():
        forward = records.get(request_key(index, row.index, language, name, "f"))
        restored = _restored(plan, index, row, language, name, records)
        if forward is None or restored is None:
            return None, {}, f"no translation of {name}"
        (text, problems), segments = restored, plan.masked[(row.index, name)][1]
        back = records.get(request_key(index, row.index, language, name, "b"))
        back_text = restore(back["text"], segments)[0] if back is not None else None
        quality = estimate_quality(source=source_text, source_language=plan.source, candidate=text,
                                   target_language=language, back_translation=back_text,
                                   stopped_at_max_tokens=bool(forward.get("truncated")))
        value = comet.get((index, row.index, language, name)) if comet is not None else None
        if value is not None:  # an empty field was not sent to COMET: the fallback's 0 stands
            quality = comet_quality(value, quality)
        fields[name] = text
        scores.append(quality)
        weights.append(max(1, len(source_text)))
        flags.update(quality.flags)
        if problems:
            flags.add(SEGMENTS_LOST)
    total = sum(weights)
    score = round(sum(q.score * w for q, w in zip(scores, weights, strict=True)) / total, 4)
    components: dict[str, float] = {}
    for name in {name for quality in scores for name in quality.components}:
        present = [(q.components[name], w) for q, w in zip(scores, weights, strict=True) if name in q.components]
        components[name] = round(sum(v * w for v, w in present) / sum(w for _, w in present), 4)
    return QualityScore(score, components, tuple(sorted(flags))), fields, ""


def _acceptable(quality: QualityScore | None) -> bool:
    return quality is not None and not quality.hard_failure and SEGMENTS_LOST not in quality.flags


def _stored_fields(row: Any, fields: dict[str, str]) -> dict[str, Any]:
    if row.instruction or row.output:
        return {"instruction": fields.get("instruction", ""), "input": fields.get("input", ""),
                "output": fields.get("output", "")}
    messages = [{"role": message.get("role", ""), "content": fields.get(f"m{index}", message.get("content", ""))}
                for index, message in enumerate(row.messages or [])]
    return {"messages": messages}


def _translation(job: TranslationJob, plan: Plan, row: Any, language: str, records: dict[str, dict],
                 comet: dict | None = None, scorer: str = FALLBACK) -> Translation:
    candidates = [_candidate(job, plan, index, row, language, records, comet)
                  for index in range(len(job.translators))]
    summary = [{"translator": entry["label"], "score": quality.score if quality else None, "scorer": scorer,
                "flags": list(quality.flags) if quality else [FAILED], **({"error": error} if error else {})}
               for entry, (quality, _, error) in zip(job.translators, candidates, strict=True)]
    acceptable = [index for index, (quality, _, _) in enumerate(candidates) if _acceptable(quality)]
    scored = [index for index, (quality, _, _) in enumerate(candidates) if quality is not None]
    pool = acceptable or scored
    translation = Translation(job=job, row=row, language_id=language, candidates=summary)
    if not pool:
        translation.flags = [FAILED]
        return translation
    best = pool[choose_best([candidates[index][0] for index in pool])]
    quality, fields, _ = candidates[best]
    translation.chosen = bool(acceptable)
    translation.translator_id = job.translators[best]["translator"]
    translation.translator_label = job.translators[best]["label"]
    translation.fields = _stored_fields(row, fields)
    translation.quality, translation.components, translation.flags = quality.score, quality.components, \
        list(quality.flags)
    return translation


def report(translations: list[Translation], threshold: float, *, scorer: str = FALLBACK,
           scorer_error: str = "") -> dict[str, dict[str, Any]]:
    """Per language: rows, chosen_by {translator: n}, mean_quality and a 10-bin histogram of the chosen ones'
    scores, below_threshold (chosen, under the threshold), not_acceptable (no candidate chosen), post_edited, the
    scorer ("comet-kiwi:<model>" or "fallback") and scorer_error (why COMET was not used although configured)."""
    per_language: dict[str, dict[str, Any]] = {}
    for language in sorted({translation.language_id for translation in translations}):
        mine = [translation for translation in translations if translation.language_id == language]
        chosen = [translation for translation in mine if translation.chosen]
        scores = [translation.quality for translation in chosen]
        histogram = [0] * HISTOGRAM_BINS
        for score in scores:
            histogram[min(HISTOGRAM_BINS - 1, int(score * HISTOGRAM_BINS))] += 1
        per_language[language] = {
            "rows": len(mine),
            "chosen_by": dict(Counter(translation.translator_label for translation in chosen)),
            "mean_quality": round(sum(scores) / len(scores), 4) if scores else None,
            "below_threshold": sum(score < threshold for score in scores),
            "not_acceptable": len(mine) - len(chosen),
            "histogram": histogram,
            "post_edited": 0,
            "scorer": scorer,
            "scorer_error": scorer_error,
        }
    return per_language


def translation_job_choose(*, job: TranslationJob, plan: Plan, records: dict[str, dict],
                           should_stop: Callable[[], bool] | None = None) -> dict[str, dict] | None:
    """Score, choose and store one Translation per (row, language), replacing an earlier attempt's; the report is
    written on the job. A COMET-Kiwi failure is added to the job's failures (the fallback scored instead).

    None, with nothing stored (no Translation replaced, no report), when `should_stop` (the job's tracker, asked
    while COMET scores) said stop: the caller ends the job as after a stop between batches."""
    try:
        comet, scorer, comet_error = _comet_scores(job, plan, records, should_stop)
    except CometStopped as exc:
        logger.info("translation job %s: %s", job.pk, exc)
        return None
    translations = [_translation(job, plan, row, language, records, comet, scorer)
                    for language in job.languages for row in plan.rows]
    summary = report(translations, job.quality_threshold, scorer=scorer,
                     scorer_error=COMET_FELL_BACK + comet_error if comet_error else "")
    with transaction.atomic():
        Translation.objects.filter(job=job).delete()
        Translation.objects.bulk_create(translations, batch_size=1000)
        update: dict[str, Any] = {"per_language": summary}
        if comet_error:
            failures, count = TranslationJob.objects.filter(pk=job.pk).values_list("failures", "failure_count")[0]
            update["failures"] = [*(failures or []), {"external_id": "", "language": "", "field": "",
                                                      "translator": "COMET-Kiwi",
                                                      "message": (COMET_FELL_BACK + comet_error)[:1000]}]
            update["failure_count"] = count + 1
        TranslationJob.objects.filter(pk=job.pk).update(**update)
    return summary
