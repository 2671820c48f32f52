"""The next round: a succeeded training run's model answers a prompt set, and the answers become the next campaign.

A round is campaign -> export -> training run -> model version -> evaluation -> generation job -> next campaign
(generation/services/lineage.py reads the chain back). "Next round" starts the job of that chain: the run's final
version generates the candidates, optionally beside what it was trained from (its parent version, or the bare base
model), so annotators rank the new model against the old one and the next export holds on-policy pairs (iterative
DPO: RLHF Workflow, arXiv 2405.07863).
"""

from __future__ import annotations

from annotation.models import Campaign, JobStatus
from crossfeed.errors import InvalidInput
from generation.models import GenerationJob
from generation.services.jobs import generation_job_create
from generation.services.lineage import campaign_chain, round_number
from generation.services.validation import check_campaign_name_free
from training.models import ModelVersion, TrainingRun
from training.selectors import final_version

NAME_MAX = 200  # Campaign.name
DEFAULT_OVERLAP = 3


def next_round_generators(*, version: ModelVersion, against_parent: bool) -> list[dict]:
    """The new version; with against_parent, also what it was trained from: its parent version, else the base."""
    generators = [{"model_version": version.pk}]
    if against_parent:
        generators.append({"model_version": version.parent_id} if version.parent_id
                          else {"base_model": version.base_model_id})
    return generators


def _round_version(run: TrainingRun) -> ModelVersion:
    if run.status != JobStatus.SUCCEEDED:
        raise InvalidInput(f"training run {run.pk} is {run.status}: a next round starts from a run that succeeded",
                           field="training_run")
    version = final_version(run)
    if version is None:
        raise InvalidInput(f"training run {run.pk} succeeded but registered no model version of its last stage; "
                           "retrain it or pick another run", field="training_run")
    return version


def _trained_campaign(run: TrainingRun) -> Campaign | None:
    export = run.export or run.sft_export
    return export.campaign if export else None


def _name_in_use(name: str) -> bool:
    try:
        check_campaign_name_free(name)
    except InvalidInput:
        return True
    return False


def default_campaign_name(*, run: TrainingRun, version: ModelVersion) -> str:
    """"<first campaign> — round N", N the number of the round the run's model opens; a free name (", 2", ", 3"
    appended) when a run gets more than one next round."""
    trained = _trained_campaign(run)
    if trained is None:
        stem, number = version.name, 2
    else:
        number = round_number(trained) + 1
        stem = _first_campaign_name(trained)
    base = f"{stem} — round {number}"
    candidates = [base, *(f"{base} ({n})" for n in range(2, 100))]
    for candidate in candidates:
        # The stem is cut, never the round: two long names must not end up the same.
        suffix = candidate[len(stem):]
        name = stem[:NAME_MAX - len(suffix)] + suffix
        if not _name_in_use(name):
            return name
    raise InvalidInput(f"the names {base!r} to {candidates[-1]!r} are all in use; name the campaign",
                       field="campaign_name")


def _first_campaign_name(campaign: Campaign) -> str:
    first = campaign_chain(campaign)[0]
    # A first campaign named like a round already ("Demo — round 1") keeps its stem.
    return first.name.split(" — round ")[0]


def next_round_create(*, run: TrainingRun, prompts: dict | None = None, against_parent: bool = True,
                      response_languages=None, languages_per_prompt: int | None = None,
                      samples_per_generator: int = 1, params: dict | None = None, campaign_name: str = "",
                      overlap: int | None = None, off_target: str = "keep", created_by=None) -> GenerationJob:
    """Queue the generation job of the round after `run`: its final version (and, with against_parent, what that was
    trained from) answers `prompts` (default: the prompts of the campaign the run was trained on, in the response
    languages they had there) into a new campaign. Everything is checked by generation_job_create before anything
    is stored."""
    version = _round_version(run)
    if not isinstance(against_parent, bool):
        raise InvalidInput("true or false", field="against_parent")
    trained = _trained_campaign(run)
    if prompts is None:
        if trained is None:
            raise InvalidInput(f"training run {run.pk} trained on an uploaded file, not on a campaign's export: "
                               'choose the prompts ({"campaign": id} or {"items": [...]})', field="prompts")
        prompts = {"campaign": trained.pk}
    if response_languages is None and isinstance(prompts, dict) and "campaign" in prompts:
        # The same (prompt, response language) pairs as the campaign the prompts come from: the new model is judged
        # where the old one was, and the next export's pairs are on-policy for exactly those directions.
        response_languages = "campaign"
    if not isinstance(campaign_name, str):
        raise InvalidInput("a campaign name (text)", field="campaign_name")
    name = campaign_name.strip() or default_campaign_name(run=run, version=version)
    if overlap is None:
        overlap = trained.overlap if trained is not None else DEFAULT_OVERLAP
    return generation_job_create(
        generators=next_round_generators(version=version, against_parent=against_parent), prompts=prompts,
        response_languages=response_languages, languages_per_prompt=languages_per_prompt,
        samples_per_generator=samples_per_generator, params=params,
        campaign={"name": name, "overlap": overlap}, off_target=off_target, training_run=run,
        created_by=created_by)
