"""Reads about the annotators of a campaign: their record per language pair (judgments, gold, state, qualification),
their competence (gold accuracy, agreement with the others, a Dawid-Skene estimate), and the items whose rankings
disagree most (docs/campaigns.md).

Competence estimate: one-coin Dawid-Skene, from crowd-kit (maintained, Toloka's library of crowdsourcing
aggregation methods). Each pair of responses of an item is a *task* whose label is the annotator's choice: the
first response ranked higher, the second, or a tie. The one-coin model gives every annotator one probability of
labelling a task right (their *skill*) and estimates it together with the true labels by EM, so an annotator who
agrees with the reliable ones scores high and a random clicker scores near 1/3. We chose it over MACE (also in
crowd-kit): MACE's competence is the probability of *not spamming*, which on 3–5 judgments per item is mostly decided
by its priors, while the one-coin skill reads as a plain accuracy that a campaign lead can compare with gold
accuracy. Over crowd-kit's full Dawid-Skene it keeps one number per annotator instead of a 3 × 3 confusion matrix
estimated from a few hundred tasks.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet

from annotation.export.agreement import AnnotatorAgreementAccumulator
from annotation.export.pairs import ItemJudgment
from annotation.gold import by_position, gold_correct
from annotation.models import (
    Adjudication,
    AnnotatorStanding,
    Campaign,
    Exclusion,
    Item,
    Judgment,
    QualificationResult,
    Response,
)
from annotation.selectors import annotator_languages, judgments_by_item_with_ids
from crossfeed.permissions import user_may

# One-coin Dawid-Skene: EM iterations (crowd-kit's default is 100; it stops earlier when the estimates settle).
DS_ITERATIONS = 100
MAX_DISAGREEMENTS = 500


def pair_label(prompt_language: str, response_language: str) -> str:
    return f"{prompt_language}→{response_language}"


# --- the API's annotator list ----------------------------------------------------------------------------------------


def annotator_active_seconds(campaign: Campaign) -> dict[int, int]:
    """Active seconds per annotator id, by the time report's rules (judgment timings and page activity, idle gaps
    cut at CROSSFEED_IDLE_LIMIT_SECONDS): annotation/services/timesheets.py."""
    from annotation.services.timesheets import campaign_active_seconds

    return campaign_active_seconds(campaign=campaign)


def annotators_overview(campaign: Campaign) -> list[dict]:
    """Per annotator who judged in the campaign or has a record there: per language pair their judgments of items
    to rank, gold items judged, gold accuracy, state (with date and reason) and qualification; and their active
    seconds. Sorted by username."""
    pairs: dict[int, dict[tuple[str, str], dict]] = defaultdict(dict)

    def entry(annotator_id: int, prompt: str, response: str) -> dict:
        return pairs[annotator_id].setdefault((prompt, response), {
            "pair": pair_label(prompt, response), "prompt_language": prompt, "response_language": response,
            "judgments": 0, "gold_seen": 0, "gold_accuracy": None, "state": AnnotatorStanding.State.OK.value,
            "state_changed_at": None, "state_reason": "", "qualification": None,
        })

    counts = (Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK)
              .values("annotator_id", "item__prompt_language_id", "item__response_language_id")
              .annotate(n=Count("id")).order_by())
    for row in counts:
        entry(row["annotator_id"], row["item__prompt_language_id"], row["item__response_language_id"])[
            "judgments"] = row["n"]
    for standing in AnnotatorStanding.objects.filter(campaign=campaign):
        found = entry(standing.annotator_id, standing.prompt_language_id, standing.response_language_id)
        found.update(gold_seen=standing.gold_seen, gold_accuracy=standing.gold_accuracy, state=standing.state,
                     state_changed_at=standing.state_changed_at, state_reason=standing.state_reason)
    for result in QualificationResult.objects.filter(campaign=campaign):
        entry(result.annotator_id, result.prompt_language_id, result.response_language_id)["qualification"] = {
            "passed": result.passed, "correct": result.correct, "answered": result.answered,
            "pass_mark": result.pass_mark, "decided_at": result.decided_at,
        }
    exclusions = {exclusion.annotator_id: exclusion for exclusion in Exclusion.objects.filter(campaign=campaign)}
    for annotator_id in exclusions:
        pairs.setdefault(annotator_id, {})
    seconds = annotator_active_seconds(campaign)
    names = dict(get_user_model().objects.filter(pk__in=list(pairs)).values_list("pk", "username"))
    overview = []
    for annotator_id, by_pair in pairs.items():
        exclusion = exclusions.get(annotator_id)
        overview.append({
            "user": names.get(annotator_id, str(annotator_id)),
            "user_id": annotator_id,
            "language_pairs": [by_pair[key] for key in sorted(by_pair)],
            "active_seconds": seconds.get(annotator_id, 0),
            "excluded": None if exclusion is None else {
                "reason": exclusion.reason, "since": exclusion.since, "created_at": exclusion.created_at},
        })
    return sorted(overview, key=lambda row: row["user"])


def gold_accuracy_between(*, campaign: Campaign, start: datetime, end: datetime) -> dict[tuple[int, tuple[str, str]],
                                                                                        dict]:
    """{(annotator id, (prompt language, response language)): {"gold_seen", "gold_accuracy"}} over the gold items
    judged (or last revised) in [start, end): what the time and pay report shows per period."""
    rows = list(Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.GOLD, updated_at__gte=start,
                                        updated_at__lt=end)
                .values_list("annotator_id", "item__prompt_language_id", "item__response_language_id", "item_id",
                             "ranks", "flags", "item__gold"))
    positions = dict(Response.objects.filter(item_id__in={row[3] for row in rows}).values_list("id", "position"))
    tally: dict[tuple[int, tuple[str, str]], list[int]] = defaultdict(lambda: [0, 0])
    for annotator_id, prompt, response, _item_id, ranks, flags, gold in rows:
        counts = tally[(annotator_id, (prompt, response))]
        counts[0] += 1
        counts[1] += gold_correct(gold, by_position(ranks, positions), by_position(flags or {}, positions))
    return {key: {"gold_seen": seen, "gold_accuracy": right / seen} for key, (seen, right) in tally.items()}


def standing_states_of(*, campaign: Campaign, annotator: AbstractBaseUser) -> dict[str, list]:
    """What the annotation page tells annotators about their own record: warned and excluded pairs, qualification
    results, and an admin's exclusion."""
    standings = list(AnnotatorStanding.objects.filter(campaign=campaign, annotator=annotator)
                     .exclude(state=AnnotatorStanding.State.OK))
    return {
        "warned": [s for s in standings if s.state == AnnotatorStanding.State.WARNED],
        "excluded": [s for s in standings if s.state == AnnotatorStanding.State.EXCLUDED],
        "qualifications": list(QualificationResult.objects.filter(campaign=campaign, annotator=annotator)),
        "campaign_exclusion": Exclusion.objects.filter(campaign=campaign, annotator=annotator).exists(),
    }


# --- competence ------------------------------------------------------------------------------------------------------


class PairwiseLabels:
    """Annotators' pairwise choices within one language pair, fed one item at a time, for the Dawid-Skene fit.
    Kept as three integer lists (task, annotator, label): a large pair's choices fit in a few tens of MB."""

    def __init__(self) -> None:
        self.tasks: list[int] = []
        self.workers: list[int] = []
        self.labels: list[int] = []
        self.n_tasks = 0

    def add(self, judgments: Sequence[ItemJudgment]) -> None:
        if len(judgments) < 2:
            return  # one judgment of a task tells nothing about who is right
        ids = sorted({response for judgment in judgments for response in judgment.ranks})
        for a, b in combinations(ids, 2):
            task = self.n_tasks
            self.n_tasks += 1
            for judgment in judgments:
                rank_a, rank_b = judgment.ranks.get(a), judgment.ranks.get(b)
                if rank_a is None or rank_b is None:
                    continue
                self.tasks.append(task)
                self.workers.append(judgment.annotator_id)
                self.labels.append(0 if rank_a < rank_b else 1 if rank_b < rank_a else 2)

    def skills(self) -> dict[int, float]:
        """annotator id -> one-coin Dawid-Skene skill in [0, 1]; {} when fewer than two annotators share a task."""
        if len(set(self.workers)) < 2:
            return {}
        import pandas as pd
        from crowdkit.aggregation import OneCoinDawidSkene  # imported here: loading it takes seconds

        frame = pd.DataFrame({"task": self.tasks, "worker": self.workers, "label": self.labels})
        with warnings.catch_warnings():
            # crowd-kit 1.4.2 still passes pandas arguments that pandas 3 deprecates (inplace=, copy=): its
            # warnings, not ours, and harmless until a pandas that removes them (pinned: constraints.txt).
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            model = OneCoinDawidSkene(n_iter=DS_ITERATIONS).fit(frame)
        return {int(worker): float(skill) for worker, skill in model.skills_.items() if math.isfinite(skill)}


@dataclass
class CompetenceRow:
    user: str
    annotator_id: int
    judgments: int = 0
    gold_seen: int = 0
    gold_accuracy: float | None = None
    state: str = "ok"
    agreement: float | None = None
    agreement_items: int = 0
    skill: float | None = None
    qualification: QualificationResult | None = None


def competence(campaign: Campaign, *, estimate: bool = True) -> list[dict]:
    """Per language pair, per annotator: judgments, gold record and state, leave-one-out Kendall tau-b against the
    others' consensus (annotation/export/agreement.py), and (`estimate`) the one-coin Dawid-Skene skill."""
    agreement: dict[tuple[str, str], AnnotatorAgreementAccumulator] = defaultdict(AnnotatorAgreementAccumulator)
    labels: dict[tuple[str, str], PairwiseLabels] = defaultdict(PairwiseLabels)
    judged: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for pair, _response_ids, rows in judgments_by_item_with_ids(campaign):
        judgments = [ItemJudgment.from_stored(annotator, ranks, flags) for annotator, ranks, flags in rows]
        agreement[pair].add(judgments)
        if estimate:
            labels[pair].add(judgments)
        for judgment in judgments:
            judged[pair][judgment.annotator_id] += 1
    standings = {(s.prompt_language_id, s.response_language_id, s.annotator_id): s
                 for s in AnnotatorStanding.objects.filter(campaign=campaign)}
    qualifications = {(q.prompt_language_id, q.response_language_id, q.annotator_id): q
                      for q in QualificationResult.objects.filter(campaign=campaign)}
    everyone = {key[2] for key in standings} | {key[2] for key in qualifications} | {
        annotator for counts in judged.values() for annotator in counts}
    names = dict(get_user_model().objects.filter(pk__in=everyone).values_list("pk", "username"))
    pairs = sorted(set(judged) | {key[:2] for key in standings} | {key[:2] for key in qualifications})
    result = []
    for pair in pairs:
        taus = agreement[pair].result() if pair in agreement else {}
        skills = labels[pair].skills() if estimate and pair in labels else {}
        annotators = (set(judged.get(pair, {})) | {key[2] for key in standings if key[:2] == pair}
                      | {key[2] for key in qualifications if key[:2] == pair})
        rows = []
        for annotator in annotators:
            standing = standings.get((*pair, annotator))
            tau = taus.get(annotator)
            rows.append(CompetenceRow(
                user=names.get(annotator, str(annotator)), annotator_id=annotator,
                judgments=judged.get(pair, {}).get(annotator, 0),
                gold_seen=standing.gold_seen if standing else 0,
                gold_accuracy=standing.gold_accuracy if standing else None,
                state=standing.state if standing else "ok",
                agreement=tau.agreement if tau else None, agreement_items=tau.n_items if tau else 0,
                skill=skills.get(annotator), qualification=qualifications.get((*pair, annotator)),
            ))
        result.append({"pair": pair_label(*pair), "prompt_language": pair[0], "response_language": pair[1],
                       "annotators": sorted(rows, key=lambda row: row.user)})
    return result


# --- disagreement ----------------------------------------------------------------------------------------------------


def kendall_distance(a: dict[int, int], b: dict[int, int]) -> float | None:
    """Share of response pairs two rankings order differently: 1 for each pair ordered oppositely, 1/2 for each
    pair tied in one and not the other (Fagin et al.'s distance with penalty 1/2), over the pairs both ranked.
    0: the same ranking; 1: one is the other reversed. None when they share fewer than two responses."""
    shared = sorted(a.keys() & b.keys())
    pairs = list(combinations(shared, 2))
    if not pairs:
        return None
    distance = 0.0
    for x, y in pairs:
        da, db = a[x] - a[y], b[x] - b[y]
        if (da > 0 and db < 0) or (da < 0 and db > 0):
            distance += 1
        elif (da == 0) != (db == 0):
            distance += 0.5
    return distance / len(pairs)


def item_disagreement(judgments: Sequence[ItemJudgment]) -> float | None:
    """Mean Kendall distance over every two judgments of the item; None with fewer than two."""
    distances = [d for x, y in combinations(judgments, 2) if (d := kendall_distance(x.ranks, y.ranks)) is not None]
    return sum(distances) / len(distances) if distances else None


SORTS = {"disagreement": lambda row: (-row["disagreement"], row["external_id"]),
         "judgments": lambda row: (-row["judgments"], -row["disagreement"], row["external_id"]),
         "item": lambda row: (row["external_id"],)}


def disagreements(campaign: Campaign, *, items: QuerySet[Item], pair: tuple[str, str] | None = None,
                  sort: str = "disagreement", limit: int = MAX_DISAGREEMENTS) -> dict:
    """The items (of `items`, what the viewer may adjudicate) whose rankings disagree most: per item its language
    pair, judgments, mean Kendall distance and whether a reviewer adjudicated it; and the pairs present."""
    allowed = set(items.filter(campaign=campaign).values_list("id", flat=True))
    names = dict(items.filter(pk__in=allowed).values_list("id", "external_id"))
    adjudicated = set(Adjudication.objects.filter(item_id__in=allowed).values_list("item_id", flat=True))
    found, pairs = [], set()
    for item_id, item_pair, rows in _judged_items(campaign):
        if item_id not in allowed or len(rows) < 2:
            continue
        pairs.add(item_pair)
        if pair is not None and item_pair != pair:
            continue
        score = item_disagreement([ItemJudgment.from_stored(a, ranks, flags) for a, ranks, flags in rows])
        if score is None:
            continue
        found.append({"item_id": item_id, "external_id": names.get(item_id, str(item_id)),
                      "pair": pair_label(*item_pair), "judgments": len(rows), "disagreement": score,
                      "adjudicated": item_id in adjudicated})
    found.sort(key=SORTS.get(sort, SORTS["disagreement"]))
    return {"items": found[:limit], "total": len(found), "pairs": sorted(pairs)}


def _judged_items(campaign: Campaign):
    """Yield (item id, (prompt language, response language), [(annotator, ranks, flags)]) per judged item to rank,
    streaming in item order."""
    rows = (Judgment.objects.filter(item__campaign=campaign, item__kind=Item.Kind.TASK)
            .order_by("item_id", "id")
            .values_list("item_id", "item__prompt_language_id", "item__response_language_id", "annotator_id",
                         "ranks", "flags"))
    current, pair, bucket = None, None, []
    for item_id, prompt, response, annotator_id, ranks, flags in rows.iterator(chunk_size=2000):
        if item_id != current and bucket:
            yield current, pair, bucket
            bucket = []
        current, pair = item_id, (prompt, response)
        bucket.append((annotator_id, ranks, flags))
    if bucket:
        yield current, pair, bucket


def adjudicable_items(user: AbstractBaseUser) -> QuerySet[Item]:
    """Items to rank that this user may adjudicate: all, for staff who may view items; for a reviewer, those whose
    response language is one of their native languages (a reviewer is a trusted native speaker)."""
    items = Item.objects.filter(kind=Item.Kind.TASK)
    if user_may(user, "annotation.view_item"):
        return items
    native, _reading = annotator_languages(user)
    return items.filter(Q(response_language__in=native)) if native else items.none()
