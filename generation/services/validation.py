"""Checking a generation job's input: every field, before anything is stored (generation_job_create).

Each check raises InvalidInput naming the field of the API body (generators, prompts, response_languages,
languages_per_prompt, samples_per_generator, params, campaign, off_target), with what was wrong and what to do. The
result is a JobInput: the generators with their labels, the prompts with their resolved response languages, and the
settings as they will be stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q

from annotation.item_format import EXTERNAL_ID_RE, LONE_SURROGATE
from annotation.languages import feedback_languages, get_language, normalize_language_code
from annotation.models import Campaign, Item, JobStatus
from annotation.services.campaigns import MAX_NAME_CHARS, MAX_OVERLAP
from crossfeed.errors import InvalidInput
from evaluation.services.runs import adapter_chain
from generation.backends.base import SamplingParams
from generation.models import Endpoint, GenerationJob
from generation.prompting import sample_languages
from training.models import BaseModel, ModelVersion
from training.services.registry import check_model_path

INT32_MAX = 2**31 - 1
ID_MAX = 2**63 - 1  # a larger id is no row's, and the database cannot even compare it
MAX_GENERATORS = 8  # an item holds at most 8 responses
MAX_SAMPLES = 16
MAX_NEW_TOKENS = 4096
MAX_PROMPTS = 20_000
# (prompt, response language) pairs: each becomes an item. 20,000 prompts in 5 languages, or 3,300 in all 30.
MAX_PAIRS = 100_000
# Answers (generators x pairs x samples): the job's end reads them all at once to check and import them; at ~2 KB
# each, 200,000 answers is ~400 MB of worker memory.
MAX_ANSWERS = 200_000
# The item's external_id is "<prompt external_id>:<response language>:g<job id>" and may have 200 characters:
# 16 for the language code and 11 for the job leave 170 for the prompt's.
MAX_PROMPT_ID_CHARS = 170
DEFAULT_OVERLAP = 3
PARAM_NAMES = ("temperature", "top_p", "max_new_tokens", "seed")
GENERATOR_KINDS = ("base_model", "model_version", "endpoint")
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class Prompt:
    external_id: str
    text: str
    language: str
    pivot_text: str = ""
    pivot_language: str | None = None
    response_languages: tuple[str, ...] = ()
    # For a prompt taken from a campaign: the response languages its items there have (response_languages
    # "campaign" keeps these pairs, as a next round does).
    campaign_languages: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        pivot = {"text": self.pivot_text, "language": self.pivot_language} if self.pivot_language else None
        return {"external_id": self.external_id, "text": self.text, "language": self.language, "pivot": pivot,
                "response_languages": list(self.response_languages)}

    def with_campaign_language(self, code: str) -> Prompt:
        if code in self.campaign_languages:
            return self
        return Prompt(**{**self.__dict__, "campaign_languages": (*self.campaign_languages, code)})


@dataclass
class JobInput:
    generators: list[dict[str, Any]]
    prompt_source: dict[str, Any]
    source_campaign: Campaign | None
    prompts: list[Prompt]
    response_languages: list | dict | str
    languages_per_prompt: int | None
    samples_per_generator: int
    params: dict[str, Any]
    campaign: Campaign | None
    campaign_name: str
    campaign_overlap: int | None
    off_target: str

    @property
    def requests(self) -> int:
        """Model calls the job makes: one per generator and (prompt, response language), each for every sample."""
        return len(self.generators) * sum(len(prompt.response_languages) for prompt in self.prompts)


def whole_number(value: Any, field_name: str, low: int, high: int, *, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what}a whole number from {low} to {high}", field=field_name)
    return value


# --- generators ------------------------------------------------------------------------------------------------


def check_generators(generators: Any) -> list[dict[str, Any]]:
    """[{"base_model": id} | {"model_version": id} | {"endpoint": id}] -> the same, each with its "label" (the name
    its responses carry: the base model's, version's or endpoint's name)."""
    example = '[{"base_model": 1}, {"model_version": 4}, {"endpoint": 2}]'
    if not isinstance(generators, list) or not generators:
        raise InvalidInput(f"a non-empty list of generators such as {example}", field="generators")
    if len(generators) > MAX_GENERATORS:
        raise InvalidInput(f"at most {MAX_GENERATORS} generators (an item holds at most 8 responses)",
                           field="generators")
    resolved, seen = [], set()
    for index, given in enumerate(generators):
        kind, pk = _generator_key(given, index, example)
        if (kind, pk) in seen:
            raise InvalidInput(f"generators[{index}]: {kind} {pk} is given twice", field="generators")
        seen.add((kind, pk))
        label = _generator_label(kind, pk, index)
        if any(entry["label"] == label for entry in resolved):
            raise InvalidInput(f"generators[{index}]: two generators are named {label!r}; their responses could not "
                               "be told apart", field="generators")
        resolved.append({kind: pk, "label": label})
    return resolved


def _generator_key(given: Any, index: int, example: str) -> tuple[str, int]:
    if not isinstance(given, dict) or len(given) != 1 or next(iter(given)) not in GENERATOR_KINDS:
        raise InvalidInput(f"generators[{index}]: one of {{\"base_model\": id}}, {{\"model_version\": id}} or "
                           f"{{\"endpoint\": id}}, as in {example}", field="generators")
    kind, value = next(iter(given.items()))
    pk = getattr(value, "pk", value)  # services may pass the row itself
    if isinstance(pk, bool) or not isinstance(pk, int) or not 1 <= pk <= ID_MAX:
        raise InvalidInput(f"generators[{index}].{kind}: the id of a {kind.replace('_', ' ')} (a whole number)",
                           field="generators")
    return kind, pk


def _generator_label(kind: str, pk: int, index: int) -> str:
    where = f"generators[{index}].{kind}"
    if kind == "endpoint":
        endpoint = Endpoint.objects.filter(pk=pk).first()
        if endpoint is None:
            raise InvalidInput(f"{where}: there is no endpoint {pk}; see GET /api/v1/endpoints/", field="generators")
        check_endpoint_host(endpoint.base_url, field="generators", where=f"{where} ({endpoint.name})")
        return endpoint.name
    if kind == "base_model":
        base = BaseModel.objects.filter(pk=pk).first()
        if base is None:
            raise InvalidInput(f"{where}: there is no base model {pk}; see GET /api/v1/models/", field="generators")
        check_local_model(base, where)
        return base.name
    version = ModelVersion.objects.select_related("base_model").filter(pk=pk).first()
    if version is None:
        raise InvalidInput(f"{where}: there is no model version {pk}; see GET /api/v1/models/", field="generators")
    check_local_model(version.base_model, where)
    try:
        chain = adapter_chain(version)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", field="generators") from None
    for link in chain:
        if not (Path(link.adapter_path) / "adapter_config.json").is_file():
            raise InvalidInput(f"{where}: the adapter of {link.name} is missing: no adapter_config.json in "
                               f"{link.adapter_path}", field="generators")
    return version.name


def check_local_model(base: BaseModel, where: str) -> None:
    """The base model must be a saved model folder on this machine: generation never downloads (as evaluation)."""
    try:
        path = check_model_path(base.path, field="generators")
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", field="generators") from None
    if not Path(path).is_dir():
        raise InvalidInput(f"{where}: the base model {base.name!r} is {base.path!r}, not a folder on this machine; "
                           "generation runs offline and never downloads from a model hub: download it once and "
                           "register the folder", field="generators")


def check_endpoint_host(base_url: str, *, field: str, where: str = "") -> None:
    from generation.backends.endpoint import allowed

    if not allowed(base_url, settings.CROSSFEED_GENERATION_ALLOWED_HOSTS):
        hosts = ", ".join(settings.CROSSFEED_GENERATION_ALLOWED_HOSTS) or "none"
        prefix = f"{where}: " if where else ""
        raise InvalidInput(f"{prefix}the host of {base_url!r} is not allowed (CROSSFEED_GENERATION_ALLOWED_HOSTS: "
                           f"{hosts}); the operator adds it there, or use an allowed host", field=field)


# --- prompts ---------------------------------------------------------------------------------------------------


def check_prompts(prompts: Any) -> tuple[list[Prompt], dict[str, Any], Campaign | None]:
    """{"campaign": id} or {"items": [{external_id, text, language, pivot?}]} -> (prompts without their response
    languages yet, the source as stored, the source campaign)."""
    if not isinstance(prompts, dict) or len(prompts) != 1 \
            or next(iter(prompts)) not in ("campaign", "instruction_set", "items"):
        raise InvalidInput('one of {"campaign": id}, {"instruction_set": id} or {"items": [{"external_id", "text", '
                           '"language", "pivot"?}, ...]}', field="prompts")
    if "instruction_set" in prompts:
        found, source = instruction_set_prompts(prompts["instruction_set"])
        return found, source, None
    if "campaign" in prompts:
        campaign = _campaign_by_id(prompts["campaign"], "prompts")
        found = campaign_prompts(campaign)
        if not found:
            raise InvalidInput(f"campaign {campaign.name!r} has no items to take prompts from", field="prompts")
        return found, {"campaign": campaign.pk, "prompts": len(found)}, campaign
    items = prompts["items"]
    if not isinstance(items, list) or not items:
        raise InvalidInput("a non-empty list of prompts: the prompt set has no items", field="prompts")
    if len(items) > MAX_PROMPTS:
        raise InvalidInput(f"{len(items)} prompts; at most {MAX_PROMPTS} per job", field="prompts")
    found, seen = [], set()
    for index, item in enumerate(items):
        prompt = _posted_prompt(item, f"items[{index}]")
        if prompt.external_id in seen:
            raise InvalidInput(f"items[{index}].external_id: {prompt.external_id!r} is used twice", field="prompts")
        seen.add(prompt.external_id)
        found.append(prompt)
    return found, {"items": len(found)}, None


def campaign_prompts(campaign: Campaign) -> list[Prompt]:
    """One prompt per distinct prompt (text, language, pivot) of the campaign's items to rank, named by the first
    item that has it."""
    found: dict[tuple, Prompt] = {}
    rows = (Item.objects.filter(campaign=campaign, kind=Item.Kind.TASK).order_by("id")
            .values_list("external_id", "prompt_text", "prompt_language_id", "pivot_text", "pivot_language_id",
                         "response_language_id"))
    for external_id, text, language, pivot_text, pivot_language, response_language in rows.iterator(chunk_size=2000):
        key = (text, language, pivot_text, pivot_language)
        if key not in found:
            found[key] = Prompt(external_id=prompt_id(external_id), text=text, language=language,
                                pivot_text=pivot_text if pivot_language else "", pivot_language=pivot_language)
        found[key] = found[key].with_campaign_language(response_language)
    if len(found) > MAX_PROMPTS:
        raise InvalidInput(f"campaign {campaign.name!r} has {len(found)} distinct prompts; at most {MAX_PROMPTS} "
                           "per job: post a part of them as items", field="prompts")
    return list(found.values())


def instruction_set_prompts(set_id: Any) -> tuple[list[Prompt], dict[str, Any]]:
    """One prompt per row of an imported instruction set: its user turn (an Alpaca row's instruction and input), in
    the set's language, named by the row's id (or "row-<index>" where that id is not one an item may carry)."""
    from instructions.models import InstructionRow, InstructionSet

    if isinstance(set_id, bool) or not isinstance(set_id, int) or not 1 <= set_id <= 2**63 - 1:
        raise InvalidInput("instruction_set: the id of an instruction set", field="prompts")
    found_set = InstructionSet.objects.ready().filter(pk=set_id).first()
    if found_set is None:
        raise InvalidInput(f"instruction_set: no instruction set {set_id} (or it is still being imported)",
                           field="prompts")
    if found_set.rows > MAX_PROMPTS:
        raise InvalidInput(f"instruction set {found_set.name!r} has {found_set.rows} rows; at most {MAX_PROMPTS} per "
                           "job: post a part of them as items", field="prompts")
    found: list[Prompt] = []
    seen: set[str] = set()
    rows = (InstructionRow.objects.filter(instruction_set=found_set).order_by("index")
            .values_list("index", "external_id", "messages", "language_id"))
    for index, external_id, messages, language in rows.iterator(chunk_size=2000):
        text = next((turn["content"] for turn in messages if turn.get("role") == "user"), "")
        if not text.strip() or len(text) > settings.CROSSFEED["MAX_PROMPT_CHARS"]:
            continue  # checked at import; a row too long for an item's prompt is left out, not the whole set
        name = external_id if EXTERNAL_ID_RE.fullmatch(external_id) and len(external_id) <= MAX_PROMPT_ID_CHARS \
            else f"row-{index}"
        name = name if name not in seen else f"row-{index}"
        seen.add(name)
        found.append(Prompt(external_id=name, text=text, language=language))
    if not found:
        raise InvalidInput(f"instruction set {found_set.name!r} has no rows to take prompts from", field="prompts")
    return found, {"instruction_set": found_set.pk, "prompts": len(found)}


def prompt_id(external_id: str) -> str:
    """A campaign item's id as a prompt's, short enough for the items made from it (see MAX_PROMPT_ID_CHARS)."""
    if len(external_id) <= MAX_PROMPT_ID_CHARS:
        return external_id
    import hashlib

    digest = hashlib.sha256(external_id.encode("utf-8")).hexdigest()[:16]
    return f"{external_id[:MAX_PROMPT_ID_CHARS - 17]}.{digest}"


def _posted_prompt(item: Any, where: str) -> Prompt:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: expected an object with external_id, text, language and optionally pivot",
                           field="prompts")
    unknown = sorted(set(item) - {"external_id", "text", "language", "pivot"})
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0][:40]}: unknown field (allowed: external_id, text, language, pivot)",
                           field="prompts")
    external_id = item.get("external_id")
    if not isinstance(external_id, str) or not EXTERNAL_ID_RE.fullmatch(external_id) \
            or len(external_id) > MAX_PROMPT_ID_CHARS:
        raise InvalidInput(f"{where}.external_id: expected 1–{MAX_PROMPT_ID_CHARS} characters: letters, digits and "
                           ". _ : @ / + -", field="prompts")
    text = _prompt_text(item.get("text"), f"{where}.text")
    language = _known_language(item.get("language"), f"{where}.language", "prompts")
    pivot = item.get("pivot")
    if pivot is None:
        return Prompt(external_id=external_id, text=text, language=language)
    if not isinstance(pivot, dict) or set(pivot) - {"text", "language"}:
        raise InvalidInput(f"{where}.pivot: expected an object with text and language", field="prompts")
    return Prompt(external_id=external_id, text=text, language=language,
                  pivot_text=_prompt_text(pivot.get("text"), f"{where}.pivot.text"),
                  pivot_language=_known_language(pivot.get("language"), f"{where}.pivot.language", "prompts"))


def _prompt_text(text: Any, where: str) -> str:
    limit = settings.CROSSFEED["MAX_PROMPT_CHARS"]
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{where}: required, a non-empty text", field="prompts")
    if len(text) > limit:
        raise InvalidInput(f"{where}: {len(text)} characters; the limit is {limit}", field="prompts")
    if "\x00" in text or LONE_SURROGATE.search(text):
        raise InvalidInput(f"{where}: contains a NUL character or a lone surrogate escape, which is not text",
                           field="prompts")
    return text


def _known_language(code: Any, where: str, field_name: str) -> str:
    canonical = normalize_language_code(code) if isinstance(code, str) and code else None
    if canonical is None:
        shown = code[:40] if isinstance(code, str) else code
        raise InvalidInput(f"{where}: unknown language {shown!r}; see GET /api/v1/languages/ for the codes",
                           field=field_name)
    return canonical


# --- response languages ----------------------------------------------------------------------------------------


CAMPAIGN_PAIRS = "campaign"


def check_response_languages(given: Any, *, source_campaign: Campaign | None = None) -> list | dict | str:
    """As stored on the job: [] (the default), a list of codes, {"<prompt lang>": [codes]}, or "campaign" (each
    prompt in the response languages its items have in the source campaign); codes canonical."""
    if given in (None, [], {}):
        return []
    if given == CAMPAIGN_PAIRS:
        if source_campaign is None:
            raise InvalidInput('"campaign" keeps the language pairs of the prompts\' campaign: take the prompts '
                               'from a campaign ({"campaign": id}), or list the response languages',
                               field="response_languages")
        return CAMPAIGN_PAIRS
    if isinstance(given, list):
        return _code_list(given, "response_languages")
    if isinstance(given, dict):
        resolved: dict[str, list[str]] = {}
        for prompt_code, codes in given.items():
            key = _known_language(prompt_code, f"prompt language {prompt_code!r}", "response_languages")
            codes = _code_list(codes, f"response_languages[{prompt_code!r}]")
            if not codes:
                raise InvalidInput(f"{prompt_code}: an empty list; leave the prompt language out to use the default",
                                   field="response_languages")
            resolved[key] = codes
        return resolved
    raise InvalidInput('a list of language codes such as ["ta", "hi"], or {"<prompt language>": [codes]}',
                       field="response_languages")


def _code_list(codes: Any, where: str) -> list[str]:
    if not isinstance(codes, list):
        raise InvalidInput(f"{where}: a list of language codes such as [\"ta\", \"hi\"]", field="response_languages")
    resolved: list[str] = []
    for code in codes:
        canonical = _known_language(code, where, "response_languages")
        if canonical not in resolved:
            resolved.append(canonical)
    return resolved


def resolve_languages(prompts: list[Prompt], response_languages: list | dict | str, k: int | None,
                      seed: int) -> list[Prompt]:
    """Each prompt with its response languages: those given for its language (a shared list, less the prompt's own
    language; a per-language list, as given), or the feedback languages other than its own; then `k` of them,
    chosen per prompt (prompting.sample_languages: the same on every retry)."""
    default = [spec.code for spec in feedback_languages()]
    resolved = []
    for prompt in prompts:
        if response_languages == CAMPAIGN_PAIRS:
            candidates = list(prompt.campaign_languages)
        elif isinstance(response_languages, dict):
            if prompt.language not in response_languages:
                given = ", ".join(sorted(response_languages))
                raise InvalidInput(f"no response languages for the prompt language {prompt.language!r} (prompt "
                                   f"{prompt.external_id!r}); given for: {given}", field="response_languages")
            candidates = response_languages[prompt.language]
        else:
            candidates = [code for code in (response_languages or default) if code != prompt.language]
        if not candidates:
            raise InvalidInput(f"prompt {prompt.external_id!r} is in {prompt.language!r}, the only response language "
                               "given: give another", field="response_languages")
        chosen = sample_languages(candidates, k, key=prompt.external_id, seed=seed)
        resolved.append(Prompt(**{**prompt.__dict__, "response_languages": tuple(chosen)}))
    pairs = sum(len(prompt.response_languages) for prompt in resolved)
    if pairs > MAX_PAIRS:
        raise InvalidInput(f"{pairs} (prompt, response language) pairs; at most {MAX_PAIRS} per job: fewer prompts, "
                           "or set languages_per_prompt", field="response_languages")
    return resolved


def language_names(code: str) -> tuple[str, str]:
    spec = get_language(code)
    return (spec.name, spec.native_name) if spec is not None else (code, code)


# --- settings --------------------------------------------------------------------------------------------------


def check_params(params: Any) -> dict[str, Any]:
    """temperature 0–2 (0: greedy), top_p in (0, 1], max_new_tokens 1–4096, seed 0–2^31-1; the defaults of
    SamplingParams for those not given. Returned complete, as stored on the job."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput('an object such as {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 256, "seed": 0}',
                           field="params")
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise InvalidInput(f"{str(unknown[0])[:40]}: unknown setting; allowed: {', '.join(PARAM_NAMES)}",
                           field="params")
    values = {**SamplingParams().__dict__, **params}
    temperature, top_p = values["temperature"], values["top_p"]
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        raise InvalidInput("temperature: a number from 0 (greedy) to 2", field="params")
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise InvalidInput("top_p: a number above 0 and at most 1", field="params")
    whole_number(values["max_new_tokens"], "params", 1, MAX_NEW_TOKENS, what="max_new_tokens: ")
    whole_number(values["seed"], "params", 0, INT32_MAX, what="seed: ")
    return {"temperature": float(temperature), "top_p": float(top_p), "max_new_tokens": values["max_new_tokens"],
            "seed": values["seed"]}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_campaign_target(campaign: Any) -> tuple[Campaign | None, str, int | None]:
    """{"id": id} (an open campaign the items are added to) or {"name": ..., "overlap"?: k} (a new campaign, made
    when the job ends) -> (campaign, name, overlap)."""
    if not isinstance(campaign, dict) or not (set(campaign) == {"id"} or ("name" in campaign
                                                                          and set(campaign) <= {"name", "overlap"})):
        raise InvalidInput('one of {"id": <campaign id>} or {"name": "...", "overlap": k}', field="campaign")
    if "id" in campaign:
        found = _campaign_by_id(campaign["id"], "campaign")
        if found.status == Campaign.Status.CLOSED:
            raise InvalidInput(f"campaign {found.name!r} is closed: reopen it, or name a new campaign",
                               field="campaign")
        if found.task == Campaign.Task.POST_EDIT:
            # Its items are translations to post-edit (the import would refuse them at the job's end).
            raise InvalidInput(f"campaign {found.name!r} is a post-editing campaign: generated responses go into a "
                               "ranking campaign; name a new one or give another id", field="campaign")
        return found, "", None
    name = campaign["name"]
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS \
            or LONE_SURROGATE.search(name) or "\x00" in name:
        raise InvalidInput(f"name: required, at most {MAX_NAME_CHARS} characters", field="campaign")
    name = name.strip()
    overlap = campaign.get("overlap")
    overlap = DEFAULT_OVERLAP if overlap is None else whole_number(overlap, "campaign", 1, MAX_OVERLAP,
                                                                   what="overlap: ")
    check_campaign_name_free(name)
    return None, name, overlap


def check_campaign_name_free(name: str, *, job_id: int | None = None) -> None:
    """No campaign has the name (in any case), nor does another unfinished job mean to make one with it."""
    if Campaign.objects.filter(name__iexact=name).exists():
        raise InvalidInput(f"name: a campaign named {name!r} already exists; choose another name, or add to it with "
                           '{"id": <its id>}', field="campaign")
    pending = GenerationJob.objects.filter(Q(campaign_name__iexact=name), Q(status__in=UNFINISHED),
                                           Q(campaign__isnull=True))
    if job_id is not None:
        pending = pending.exclude(pk=job_id)
    other = pending.first()
    if other is not None:
        raise InvalidInput(f"name: generation job {other.pk} ({other.status}) will make a campaign named {name!r}; "
                           "choose another name", field="campaign")


def _campaign_by_id(value: Any, field_name: str) -> Campaign:
    pk = getattr(value, "pk", value)
    if isinstance(pk, bool) or not isinstance(pk, int) or not 1 <= pk <= ID_MAX:
        raise InvalidInput("the id of a campaign (a whole number)", field=field_name)
    found = Campaign.objects.filter(pk=pk).first()
    if found is None:
        raise InvalidInput(f"there is no campaign {pk}; see GET /api/v1/campaigns/", field=field_name)
    return found


def check_job_input(*, generators: Any, prompts: Any, response_languages: Any, languages_per_prompt: Any,
                    samples_per_generator: Any, params: Any, campaign: Any, off_target: Any) -> JobInput:
    """Every field, in the order of the API body; the first problem is raised."""
    resolved_generators = check_generators(generators)
    found, source, source_campaign = check_prompts(prompts)
    languages = check_response_languages(response_languages, source_campaign=source_campaign)
    if languages_per_prompt is not None:
        whole_number(languages_per_prompt, "languages_per_prompt", 1, 200)
    samples = whole_number(samples_per_generator, "samples_per_generator", 1, MAX_SAMPLES)
    sampling = check_params(params)
    target, name, overlap = check_campaign_target(campaign)
    if off_target not in GenerationJob.OffTarget.values:
        raise InvalidInput(f"one of {', '.join(GenerationJob.OffTarget.values)}", field="off_target")
    resolved = resolve_languages(found, languages, languages_per_prompt, sampling["seed"])
    answers = len(resolved_generators) * sum(len(prompt.response_languages) for prompt in resolved) * samples
    if answers > MAX_ANSWERS:
        raise InvalidInput(f"{answers} answers (generators x prompts x response languages x samples); at most "
                           f"{MAX_ANSWERS} per job: split the prompts over several jobs",
                           field="samples_per_generator")
    return JobInput(
        generators=resolved_generators, prompt_source=source, source_campaign=source_campaign, prompts=resolved,
        response_languages=languages, languages_per_prompt=languages_per_prompt, samples_per_generator=samples,
        params=sampling, campaign=target, campaign_name=name, campaign_overlap=overlap, off_target=off_target,
    )
