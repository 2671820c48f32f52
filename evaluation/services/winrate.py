"""Win-rate campaigns: two models' answers to the same open-ended prompts, ranked by native speakers.

`winrate_campaign_create` turns two evaluation runs into an annotation campaign: one item per prompt both runs
answered, holding the two answers (the response's `model` is the version's name), in an order that depends on the
item, so neither model always sits on the left. `winrate_summary` reads the campaign's judgments back as win shares
per response language (evaluation/winrate.py explains the figure and its interval).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from django.db import transaction

from annotation.models import Campaign, Item
from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from crossfeed.errors import InvalidInput
from evaluation.benchmarks import get_benchmark
from evaluation.models import EvaluationRun
from evaluation.outputs import read_records
from evaluation.winrate import WinShare, outcome, win_share

GUIDELINES = (
    "Each item shows one instruction and two answers written by different models. Rank the better answer 1 and the "
    "other 2; give both the same rank when neither is better. Judge whether the answer does what was asked, is "
    "correct, and is written in the language the instruction expects. Flag an answer in the wrong language."
)
_UNSAFE_ID = re.compile(r"[^\w.:@/+-]")


def _answers(run: EvaluationRun) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(benchmark, language, id) -> record, for the open-ended benchmarks' non-empty outputs."""
    answers = {}
    for record in read_records(run.outputs_path):
        benchmark = get_benchmark(record.get("benchmark", ""))
        if benchmark and benchmark.task == "open_ended" and (record.get("output") or "").strip():
            answers[(record["benchmark"], record["language"], str(record["id"]))] = record
    return answers


def _item(run_a: EvaluationRun, run_b: EvaluationRun, key: tuple[str, str, str], a: dict, b: dict) -> dict:
    benchmark, language, example_id = key
    external_id = _UNSAFE_ID.sub("_", f"winrate-{run_a.pk}-{run_b.pk}-{benchmark}-{language}-{example_id}")[:200]
    expected = b.get("expected_language") or language
    responses = [{"text": a["output"], "language": expected, "model": run_a.model_label},
                 {"text": b["output"], "language": expected, "model": run_b.model_label}]
    # Position by a hash of the item, not at random: re-importing the same campaign gives the same items.
    if hashlib.sha256(external_id.encode()).digest()[0] % 2:
        responses.reverse()
    return {"external_id": external_id, "prompt": {"text": a["input"], "language": language},
            "responses": responses,
            "metadata": {"winrate": {"run_a": run_a.pk, "run_b": run_b.pk, "benchmark": benchmark,
                                     "example": example_id}}}


@transaction.atomic
def winrate_campaign_create(*, run_a: EvaluationRun, run_b: EvaluationRun, name: str, overlap: int = 3,
                            created_by=None) -> tuple[Campaign, dict[str, int]]:
    """A campaign with one item per open-ended prompt both runs answered (different answers only)."""
    if run_a.model_label == run_b.model_label:
        raise InvalidInput("both runs evaluated the same model: a win rate needs two different ones", field="b")
    answers_a, answers_b = _answers(run_a), _answers(run_b)
    shared = sorted(set(answers_a) & set(answers_b))
    lines = [_item(run_a, run_b, key, answers_a[key], answers_b[key]) for key in shared
             if answers_a[key]["output"].strip() != answers_b[key]["output"].strip()]
    if not lines:
        raise InvalidInput("the two runs have no open-ended prompt in common with two different, non-empty answers",
                           field="b")
    campaign = campaign_create(name=name, created_by=created_by, overlap=overlap, guidelines=GUIDELINES)
    result = items_import(campaign=campaign, source=lines)
    return campaign, {"items": result.created, "identical": len(shared) - len(lines)}


def winrate_runs(campaign: Campaign) -> tuple[int, int] | None:
    """The (a, b) run ids a win-rate campaign was made from; None for any other campaign."""
    item = campaign.items.filter(metadata__has_key="winrate").order_by("id").first()
    meta = (item.metadata or {}).get("winrate") if item else None
    return (meta["run_a"], meta["run_b"]) if meta else None


def winrate_summary(*, campaign: Campaign) -> dict[str, Any]:
    """Win share of run b's model over run a's, per response language and overall, from the judgments so far."""
    runs = winrate_runs(campaign)
    if runs is None:
        raise InvalidInput(f"campaign {campaign.name!r} was not made from two evaluation runs", field="campaign")
    run_a, run_b = (EvaluationRun.objects.select_related("model_version", "base_model").get(pk=pk) for pk in runs)
    by_language: dict[str, list[list[float]]] = defaultdict(list)
    items = Item.objects.filter(campaign=campaign).select_related("response_language").prefetch_related(
        "responses", "judgments")
    pending: dict[str, int] = defaultdict(int)
    for item in items:
        models = {response.model_name: str(response.id) for response in item.responses.all()}
        id_a, id_b = models.get(run_a.model_label), models.get(run_b.model_label)
        outcomes = [outcome(judgment.ranks[id_a], judgment.ranks[id_b]) for judgment in item.judgments.all()
                    if id_a in judgment.ranks and id_b in judgment.ranks]
        language = item.response_language_id
        if outcomes:
            by_language[language].append(outcomes)
        else:
            pending[language] += 1
    languages = sorted(set(by_language) | set(pending))
    rows = [{"language": code, "result": win_share(by_language[code]), "unjudged": pending[code]}
            for code in languages]
    overall: WinShare = win_share([item for code in languages for item in by_language[code]])
    return {"run_a": run_a, "run_b": run_b, "rows": rows, "overall": overall,
            "unjudged": sum(pending.values())}
