"""The end of a generation job: from outputs.jsonl to the campaign's items.

For each (prompt, response language) the answers of every generator and sample are checked by machine
(generation/checks.py: detected language and confidence, off-target, empty, truncated, exact and near duplicates).
Empty answers and duplicates are left out (a duplicate's origin is kept in the metadata of the answer it merged
into); off-target ones are kept, with their detection (annotators see the hint and the wrong-language flag pre-set)
or left out, as the job says. A pair with fewer than 2 usable answers becomes no item: it is reported in `skipped`.

The items go in through the staged import (annotation.services.imports.items_import): all or nothing, invisible to
annotators until published. A new campaign named by the job is made only now, as a draft that opens after the
import; if the import fails, the campaign is deleted again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from annotation.item_format import LONE_SURROGATE, MAX_RESPONSES
from annotation.languages import get_language, normalize_language_code
from annotation.models import Campaign, Item
from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from crossfeed.errors import CrossfeedError
from crossfeed.jobs.lifecycle import JobFailed
from generation.checks import Candidate, Checked, check_candidates
from generation.models import GenerationJob
from generation.prompting import prompt_messages
from generation.services.validation import Prompt, check_campaign_name_free, language_names

logger = logging.getLogger(__name__)
MAX_SKIPPED_KEPT = 100
MAX_MERGED_KEPT = 16


@dataclass
class Counts:
    off_target: int = 0
    duplicates: int = 0
    empty: int = 0
    truncated: int = 0
    skipped: list[dict] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, external_id: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_KEPT:
            self.skipped.append({"external_id": external_id, "reason": reason})


def item_external_id(prompt: Prompt, language: str, job_id: int) -> str:
    # "~" would read better, but the import format allows only letters, digits and . _ : @ / + -
    return f"{prompt.external_id}:{language}:g{job_id}"


def generation_job_assemble(*, job: GenerationJob, prompts: list[Prompt], records: Iterable[dict]) -> None:
    """Check the answers, make the items, import them; the counts and the campaign are saved on the job.
    Raises JobFailed when no item can be made or the import is refused."""
    answers = _answers_by_pair(records)
    counts = Counts()
    items = []
    for number, prompt in enumerate(prompts):
        for language in prompt.response_languages:
            item = _item(job, prompt, language, answers.get((number, language), []), counts)
            if item is not None:
                items.append(item)
    GenerationJob.objects.filter(pk=job.pk).update(
        off_target_count=counts.off_target, duplicates_merged=counts.duplicates, empty_count=counts.empty,
        truncated_count=counts.truncated, skipped=counts.skipped, skipped_count=counts.skipped_count,
    )
    if not items:
        raise JobFailed(f"no (prompt, response language) pair got 2 usable answers, so no item was made "
                        f"({counts.skipped_count} skipped; see skipped and failures)")
    campaign, created = _target_campaign(job)
    try:
        items_import(campaign=campaign, source=items, created_by=job.created_by,
                     source_name=f"generation job {job.pk}")
    except CrossfeedError as exc:
        _forget_campaign(job, campaign, created)
        raise JobFailed(f"the import of the {len(items)} items into campaign {campaign.name!r} was refused, nothing "
                        f"was stored: {exc.message} {_first_errors(exc)}".strip()) from None
    except BaseException:
        _forget_campaign(job, campaign, created)
        raise
    if campaign.status == Campaign.Status.DRAFT and job.campaign_name:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    GenerationJob.objects.filter(pk=job.pk).update(
        items_created=len(items), responses_created=sum(len(item["responses"]) for item in items),
    )


def _answers_by_pair(records: Iterable[dict]) -> dict[tuple[int, str], list[dict]]:
    """The usable lines of outputs.jsonl by (prompt, language), in (generator, sample) order; a line written twice
    (a retry after a crash between the write and the progress) counts once."""
    seen: set[tuple[str, int]] = set()
    answers: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for record in records:
        if record.get("error") or (record["key"], record["sample"]) in seen:
            continue
        seen.add((record["key"], record["sample"]))
        answers[(record["prompt"], record["language"])].append(record)
    for found in answers.values():
        found.sort(key=lambda record: (record["generator"], record["sample"]))
    return answers


def _item(job: GenerationJob, prompt: Prompt, language: str, answers: list[dict],
          counts: Counts) -> dict[str, Any] | None:
    labels = [generator["label"] for generator in job.generators]
    candidates = [Candidate(generator=labels[answer["generator"]], sample=answer["sample"],
                            text=_clean(answer["text"]), new_tokens=answer["new_tokens"],
                            truncated=answer["truncated"]) for answer in answers]
    spec = get_language(language)
    checked = check_candidates(candidates, expected_language=language, expected_script=spec.script if spec else None)
    usable, left_out = _usable(job, checked, counts)
    external_id = item_external_id(prompt, language, job.pk)
    expected = len(labels) * job.samples_per_generator
    if len(usable) < 2:
        left_out["failed"] = expected - len(answers)
        counts.skip(external_id, _skip_reason(len(usable), expected, left_out))
        return None
    merged = _merged_into(checked)
    responses = [_response(job, language, checked[index], merged.get(index, [])) for index in _spread(usable,
                                                                                                     checked)]
    item = {"external_id": external_id, "prompt": {"text": prompt.text, "language": prompt.language},
            "responses": responses, "metadata": {"generation_job": job.pk, "prompt": prompt.external_id}}
    if prompt.pivot_language:
        item["pivot"] = {"text": prompt.pivot_text, "language": prompt.pivot_language}
    return item


def _usable(job: GenerationJob, checked: list[Checked], counts: Counts) -> tuple[list[int], dict[str, int]]:
    """Indices of the answers to show, and how many were left out for each reason."""
    limit = settings.CROSSFEED["MAX_RESPONSE_CHARS"]
    left_out = {"empty": 0, "duplicates": 0, "off-target": 0, "too long": 0}
    usable = []
    for index, check in enumerate(checked):
        if check.empty:
            counts.empty += 1
            left_out["empty"] += 1
            continue
        if check.duplicate_of is not None:
            counts.duplicates += 1
            left_out["duplicates"] += 1
            continue
        counts.truncated += check.truncated
        if check.off_target:
            counts.off_target += 1
            if job.off_target == GenerationJob.OffTarget.DROP:
                left_out["off-target"] += 1
                continue
        if len(check.candidate.text) > limit:
            left_out["too long"] += 1
            continue
        usable.append(index)
    return usable, left_out


def _skip_reason(usable: int, expected: int, left_out: dict[str, int]) -> str:
    parts = [f"{count} {why}" for why, count in left_out.items() if count]
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{usable} usable answer(s) of {expected}, 2 needed{detail}"


def _merged_into(checked: list[Checked]) -> dict[int, list[dict]]:
    merged: dict[int, list[dict]] = defaultdict(list)
    for check in checked:
        if check.duplicate_of is not None and len(merged[check.duplicate_of]) < MAX_MERGED_KEPT:
            merged[check.duplicate_of].append({"generator": check.candidate.generator,
                                               "sample": check.candidate.sample})
    return merged


def _spread(usable: list[int], checked: list[Checked]) -> list[int]:
    """At most MAX_RESPONSES answers, taken from the generators in turn so that each is ranked against the others."""
    if len(usable) <= MAX_RESPONSES:
        return usable
    by_generator: dict[str, list[int]] = defaultdict(list)
    for index in usable:
        by_generator[checked[index].candidate.generator].append(index)
    chosen: list[int] = []
    while len(chosen) < MAX_RESPONSES:
        for indices in by_generator.values():
            if indices and len(chosen) < MAX_RESPONSES:
                chosen.append(indices.pop(0))
    return sorted(chosen)


def _response(job: GenerationJob, language: str, check: Checked, merged: list[dict]) -> dict[str, Any]:
    candidate = check.candidate
    name, autonym = language_names(language)
    # The instruction as the model read it, with the prompt left as a placeholder (the item holds the prompt).
    instruction = prompt_messages("{prompt}", language_name=name, autonym=autonym,
                                  template=job.instruction_template)[0]["content"]
    metadata = {"generator": candidate.generator, "params": job.params, "sample": candidate.sample,
                "instruction": instruction, "new_tokens": candidate.new_tokens, "truncated": candidate.truncated,
                "job": job.pk}
    if merged:
        metadata["merged"] = merged
    # Only a language the registry knows can be stored; the identifier knows a few more.
    detected = normalize_language_code(check.detected_language) if check.detected_language else None
    return {"text": candidate.text, "language": language, "model": candidate.generator[:200], "metadata": metadata,
            "detected_language": detected, "detected_confidence": check.detected_confidence if detected else None}


def _clean(text: str) -> str:
    """What the database can store: no NUL, no lone surrogate (an endpoint's JSON can hold a "\\ud800" escape)."""
    return LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _first_errors(exc: CrossfeedError) -> str:
    shown = "; ".join(f"line {e.get('line')} {e.get('field')}: {e.get('message')}" for e in exc.errors[:3])
    return f"({shown})" if shown else ""


# --- the campaign ----------------------------------------------------------------------------------------------


def _target_campaign(job: GenerationJob) -> tuple[Campaign, bool]:
    """(the campaign the items go to, whether it was made now)."""
    if job.campaign_id is not None:
        campaign = Campaign.objects.filter(pk=job.campaign_id).first()
        if campaign is None or campaign.status == Campaign.Status.CLOSED:
            raise JobFailed(f"the job's campaign {job.campaign_id} was deleted or closed while the job ran: reopen "
                            "it, or start a job for another campaign")
        # A campaign this job made in an earlier attempt (which died before its end) is still its own.
        return campaign, bool(job.campaign_name)
    if not job.campaign_name:
        raise JobFailed("the campaign the job's items go to was deleted while the job ran: start a job for another "
                        "campaign")
    try:
        check_campaign_name_free(job.campaign_name, job_id=job.pk)
        with transaction.atomic():
            campaign = campaign_create(name=job.campaign_name, overlap=job.campaign_overlap or 3,
                                       status=Campaign.Status.DRAFT, created_by=job.created_by)
            GenerationJob.objects.filter(pk=job.pk).update(campaign=campaign)
    except (CrossfeedError, IntegrityError):
        raise JobFailed(f"a campaign named {job.campaign_name!r} was made by someone else while the job ran, so "
                        "this job's items have nowhere to go; the answers are kept in its outputs: rename that "
                        "campaign and Retry, or start a new job") from None
    job.campaign = campaign
    return campaign, True


def _forget_campaign(job: GenerationJob, campaign: Campaign, created: bool) -> None:
    """Delete the campaign the job made, unless something got into it meanwhile."""
    if not created:
        return
    try:
        with transaction.atomic():
            if not Item.all_objects.filter(campaign=campaign).exists():
                GenerationJob.objects.filter(pk=job.pk).update(campaign=None)
                campaign.delete()
    except Exception:
        logger.exception("generation job %s: the campaign %s it made could not be deleted", job.pk, campaign.pk)
