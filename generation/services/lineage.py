"""The lineage of rounds: campaign -> export -> training run -> model version -> evaluation -> generation job -> next
campaign, read from the links the objects already have (Export.campaign, TrainingRun.export / sft_export,
ModelVersion.run, EvaluationRun.model_version / training_run, GenerationJob.training_run / campaign). Nothing is
stored about rounds themselves, so a chain is whatever those links say now.

Walking back from a campaign is unambiguous: it was made by (at most) one next-round job, whose training run
trained on an export of the previous campaign. Walking forward can branch (two runs on one campaign, two next rounds
of one run); the newest link that leads on is followed, so the chain is the one most recently extended.

Each round costs a constant number of queries (28 for a chain of two rounds), whatever its number of languages or
judgments: the per-language figures are counted in one pass over value rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from annotation.languages import get_language
from annotation.models import Campaign, Export, Item, JobStatus, Judgment, Response
from evaluation import selectors as evaluation_selectors
from evaluation.models import EvaluationRun
from generation.models import GenerationJob
from training.models import ModelVersion, TrainingRun
from training.selectors import final_version

WRONG_LANGUAGE = "wrong_language"
# A chain longer than this is cut (and says so): it bounds the page's queries, and no real loop has this many rounds.
MAX_ROUNDS = 50


@dataclass(frozen=True)
class LanguageRates:
    """One response language of a round: what annotators flagged, what the machine detected."""

    language: str
    name: str
    judged: int = 0  # (judgment, response) pairs: every judgment ranks every response of its item
    flagged: int = 0  # of those, the ones flagged "wrong_language"
    candidates: int = 0  # responses of the campaign whose language the machine could measure
    off_target: int = 0  # of those, detected in another language

    @property
    def flagged_share(self) -> float | None:
        return self.flagged / self.judged if self.judged else None

    @property
    def off_target_share(self) -> float | None:
        return self.off_target / self.candidates if self.candidates else None

    @property
    def flagged_percent(self) -> float | None:
        return _percent(self.flagged_share)

    @property
    def off_target_percent(self) -> float | None:
        return _percent(self.off_target_share)


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


@dataclass
class Round:
    number: int
    campaign: Campaign
    made_by: GenerationJob | None = None  # the next-round job that generated this campaign's items
    exports: list[Export] = field(default_factory=list)
    training_run: TrainingRun | None = None
    model_version: ModelVersion | None = None
    evaluation_runs: list[EvaluationRun] = field(default_factory=list)
    # The version's newest evaluation against the one of what it was trained from (its parent version, or the bare
    # base model): evaluation.selectors.comparison's table, None when either evaluation is missing.
    baseline_run: EvaluationRun | None = None
    evaluated_run: EvaluationRun | None = None
    comparison: dict[str, Any] | None = None
    languages: list[LanguageRates] = field(default_factory=list)
    next_job: GenerationJob | None = None  # the job that makes (or made) the next round's campaign

    @property
    def next_campaign_id(self) -> int | None:
        return self.next_job.campaign_id if self.next_job else None

    @property
    def judged(self) -> int:
        return sum(rates.judged for rates in self.languages)

    @property
    def flagged_share(self) -> float | None:
        judged = self.judged
        return sum(rates.flagged for rates in self.languages) / judged if judged else None

    @property
    def off_target_share(self) -> float | None:
        candidates = sum(rates.candidates for rates in self.languages)
        return sum(rates.off_target for rates in self.languages) / candidates if candidates else None

    @property
    def flagged_percent(self) -> float | None:
        return _percent(self.flagged_share)

    @property
    def off_target_percent(self) -> float | None:
        return _percent(self.off_target_share)

    def language_table(self) -> list[dict[str, Any]]:
        """One row per language that was evaluated or judged: the comparison's cells (a -> b and the delta, per
        benchmark and metric column) beside the wrong-language rates."""
        rates = {entry.language: entry for entry in self.languages}
        compared = {row["language"]["code"]: row for row in (self.comparison or {}).get("rows", [])}
        width = len((self.comparison or {}).get("columns", []))
        rows = []
        for code in sorted(set(rates) | set(compared)):
            row = compared.get(code)
            rows.append({"code": code, "name": row["language"]["name"] if row else _name(code),
                         "cells": row["cells"] if row else [None] * width, "rates": rates.get(code)})
        return rows


# --- the chain ---------------------------------------------------------------------------------------------------


def _maker_job(campaign: Campaign) -> GenerationJob | None:
    """The next-round job that made this campaign (the oldest, if items were added to it by several)."""
    return (GenerationJob.objects.filter(campaign=campaign, training_run__isnull=False)
            .select_related("training_run", "training_run__export", "training_run__sft_export")
            .order_by("created_at", "id").first())


def _trained_campaign(run: TrainingRun) -> Campaign | None:
    """The campaign whose judgments the run trained on (its preference export's, else its SFT export's)."""
    export = run.export or run.sft_export
    return export.campaign if export else None


def _chain_back(campaign: Campaign) -> list[Campaign]:
    """This campaign, the one its round's model was trained on, and so on back to the first round."""
    back: list[Campaign] = [campaign]
    seen = {campaign.pk}
    while len(back) < MAX_ROUNDS:
        job = _maker_job(back[-1])
        previous = _trained_campaign(job.training_run) if job else None
        if previous is None or previous.pk in seen:
            break
        seen.add(previous.pk)
        back.append(previous)
    return back


def campaign_chain(campaign: Campaign) -> list[Campaign]:
    """The campaigns of the chain this campaign belongs to, first round first."""
    chain = _chain_back(campaign)[::-1]
    seen = {member.pk for member in chain}
    while len(chain) < MAX_ROUNDS:
        job = _next_job(chain[-1])
        following = job.campaign if job else None
        if following is None or following.pk in seen:
            break
        seen.add(following.pk)
        chain.append(following)
    return chain


def round_number(campaign: Campaign) -> int:
    """1 for a campaign no next round made, 2 for one made from the first round's model, and so on."""
    return len(_chain_back(campaign))


def _runs_on(campaign: Campaign):
    exports = Export.objects.filter(campaign=campaign)
    return (TrainingRun.objects.filter(Q(export__in=exports) | Q(sft_export__in=exports))
            .select_related("base_model", "export", "sft_export").prefetch_related("versions"))


def _next_job(campaign: Campaign) -> GenerationJob | None:
    """The newest next-round job of a run trained on this campaign (a failed one only when no other exists)."""
    jobs = list(GenerationJob.objects.filter(training_run__in=_runs_on(campaign).values("pk"))
                .select_related("campaign", "training_run").order_by("-created_at", "-id")[:50])
    # A job that failed or was cancelled leads nowhere unless it is all there is (the page then shows why).
    ended = (JobStatus.FAILED, JobStatus.CANCELLED)
    return next((job for job in jobs if job.status not in ended), jobs[0] if jobs else None)


def _round_run(campaign: Campaign, next_job: GenerationJob | None) -> TrainingRun | None:
    """The run of the round: the one the next round started from; else the newest that succeeded; else the
    newest."""
    if next_job is not None:
        return _runs_on(campaign).filter(pk=next_job.training_run_id).first()
    runs = list(_runs_on(campaign).order_by("-created_at", "-id")[:20])
    return next((run for run in runs if run.status == JobStatus.SUCCEEDED), runs[0] if runs else None)


# --- one round ---------------------------------------------------------------------------------------------------


def _evaluation(round_: Round) -> None:
    version, run = round_.model_version, round_.training_run
    if version is None and run is None:
        return
    links = Q(training_run=run) if run is not None else Q()
    if version is not None:
        links |= Q(model_version=version)
    round_.evaluation_runs = list(EvaluationRun.objects.filter(links).select_related("model_version", "base_model")
                                  .order_by("-created_at", "-id")[:20])
    if version is None:
        return
    baseline, evaluated = evaluation_selectors.version_and_parent_runs(version)
    round_.baseline_run, round_.evaluated_run = baseline, evaluated
    if baseline is not None and evaluated is not None:
        round_.comparison = evaluation_selectors.comparison(baseline, evaluated)


def language_rates(campaign: Campaign) -> list[LanguageRates]:
    """Per response language of the campaign's task items: judged responses and those annotators flagged as in the
    wrong language; responses whose language the machine measured and those it found in another language."""
    judged: dict[str, int] = defaultdict(int)
    flagged: dict[str, int] = defaultdict(int)
    rows = (Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK)
            .values_list("item__response_language_id", "ranks", "flags"))
    for code, ranks, flags in rows.iterator(chunk_size=2000):
        ranks, flags = ranks or {}, flags or {}
        judged[code] += len(ranks)
        flagged[code] += sum(1 for rid in ranks if WRONG_LANGUAGE in (flags.get(rid) or ()))
    candidates: dict[str, int] = defaultdict(int)
    off_target: dict[str, int] = defaultdict(int)
    measured = (Response.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK)
                .exclude(detected_language="").values_list("language_id", "detected_language"))
    for code, detected in measured.iterator(chunk_size=2000):
        candidates[code] += 1
        off_target[code] += not same_language(detected, code)
    codes = sorted(set(judged) | set(candidates))
    return [LanguageRates(language=code, name=_name(code), judged=judged[code], flagged=flagged[code],
                          candidates=candidates[code], off_target=off_target[code]) for code in codes]


def same_language(detected: str, expected: str) -> bool:
    """The identifier folds varieties (evaluation.metrics.langid) and a stored detection is its label as a registry
    code, so it may differ from the response's language in script or region alone ("zh-Hans" for "zh-Hant"): that
    is the same language here."""
    return detected.split("-")[0].lower() == expected.split("-")[0].lower()


def _name(code: str) -> str:
    spec = get_language(code)
    return spec.name if spec else code


def _round(number: int, campaign: Campaign, next_job: GenerationJob | None) -> Round:
    round_ = Round(number=number, campaign=campaign, made_by=_maker_job(campaign), next_job=next_job)
    run = _round_run(campaign, next_job)
    round_.training_run = run
    if run is not None:
        round_.exports = [export for export in (run.export, run.sft_export) if export is not None]
        round_.model_version = final_version(run)
    else:
        round_.exports = list(Export.objects.filter(campaign=campaign, status=JobStatus.SUCCEEDED)
                              .order_by("-created_at", "-id")[:3])
    _evaluation(round_)
    round_.languages = language_rates(campaign)
    return round_


def lineage(*, campaign: Campaign) -> list[Round]:
    """The chain of rounds this campaign belongs to, first to last."""
    chain = campaign_chain(campaign)
    rounds = []
    for number, member in enumerate(chain, start=1):
        following = chain[number] if number < len(chain) else None
        next_job = _next_job(member)
        if following is not None and (next_job is None or next_job.campaign_id != following.pk):
            # The walk back reached this campaign through an older branch: keep to that branch.
            next_job = _maker_job(following)
        rounds.append(_round(number, member, next_job))
    return rounds
