"""Model inference for evaluation: batched greedy generation and log-likelihood scoring of options. Django-free.

    from evaluation.inference import ModelSpec, load_model, generate, score_options
    loaded = load_model(ModelSpec("var/tiny", adapters=("runs/run-3/sft/adapter", "runs/run-3/dpo/adapter")))
    outputs = generate(loaded, [render_prompt(loaded, messages)], max_new_tokens=512, batch_size=8)

Adapters are merged into the base weights in the order given: a DPO adapter was trained on top of the merged SFT
model, so its SFT parent must be merged first (the caller walks ModelVersion.parent to build the chain).

Generation is greedy (the paper's zero-shot setting). Prompts are sorted by length so a batch holds prompts of
similar length and little padding, longest first so that running out of memory happens at once, not after an
hour. Padding is on the left: every row's last prompt token then sits at the same position, where generation
continues; transformers derives position ids from the attention mask, so a padded row decodes exactly as it would
alone (a test checks this against one-at-a-time decoding).

Log-likelihoods are scored as lm-evaluation-harness's HF backend scores them (`_loglikelihood_tokens`): one row per
context + continuation without its last token, rows sorted longest first, padded on the right (a causal model's
real tokens never look right, so no mask is needed and every row keeps the positions it has alone), and options
whose rows are the same (one-token answers such as "A"/"B"/"C"/"D" after the same context) share one row. Only the
positions that predict a continuation go through the output layer (`logits_to_keep`) and the softmax.

Token ids are cached per loaded model (TokenCache): a prompt is encoded when it is fitted to the context, again
when it is generated from or scored, and once per option.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.benchmarks.base import Benchmark, Example, fit_messages
from training.scripts.chat_templates import ChatTemplate, use_chat_template


class _LazyModule:
    """torch, imported on first use: the web processes import this module (for ModelSpec) but never infer, and
    importing torch would cost each gunicorn worker a second and some 150 MiB."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


torch = _LazyModule("torch")


def _inference_mode(function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode():
            return function(*args, **kwargs)

    return wrapper

# Models without a usable maximum length get this many positions for prompt + answer.
DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class ModelSpec:
    base_path: str
    adapters: tuple[str, ...] = ()
    # The base model's template settings, applied by the rule training applies (training/scripts/chat_templates.py):
    # chat_template wins when set, then chat_template_name ("auto": the tokenizer's own, else Question/Answer).
    chat_template: str = ""
    chat_template_name: str = "auto"


class TokenCache:
    """Token ids of texts already encoded, the least recently used dropped first once `budget` tokens are held. Ids are
    kept as 4-byte arrays: the default budget is 8 MB, a couple of thousand XL-Sum articles."""

    def __init__(self, budget: int = 2_000_000) -> None:
        self.budget = budget
        self.tokens = 0
        self.hits = 0
        self.misses = 0
        self._ids: OrderedDict[tuple[str, bool], array] = OrderedDict()

    def encode(self, tokenizer: Any, text: str, *, special: bool) -> list[int]:
        key = (text, special)
        cached = self._ids.get(key)
        if cached is not None:
            self.hits += 1
            self._ids.move_to_end(key)
            return list(cached)
        self.misses += 1
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
        if len(ids) <= self.budget:
            self._ids[key] = array("i", ids)
            self.tokens += len(ids)
            while self.tokens > self.budget:
                self.tokens -= len(self._ids.popitem(last=False)[1])
        return ids


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: torch.device
    context_length: int
    chat_template: ChatTemplate | None = None  # the template prompts are rendered with (None: the tokenizer's)
    token_cache: TokenCache = field(default_factory=TokenCache)


@dataclass(frozen=True)
class Prompt:
    """A prompt ready to encode.

    `templated`: rendered by the chat template, which writes the special tokens (BOS) itself; otherwise plain text
    (lm-evaluation-harness's request), which the tokenizer encodes with its own special tokens, as lm-eval does.
    `shortened`: the document in it was cut to fit the context (benchmarks.base.fit_messages).
    `answer_prefix`: what the chat template writes between the open assistant turn and an answer's text (" " after
    the Question/Answer format's "Answer:"); an option scored as the answer gets it first, as in training."""

    text: str
    templated: bool = True
    shortened: bool = False
    answer_prefix: str = ""


@dataclass(frozen=True)
class Generation:
    text: str
    new_tokens: int
    truncated_prompt: bool = False


@dataclass
class Throughput:
    """Generated tokens and the seconds spent generating them, summed over calls."""

    new_tokens: int = 0
    seconds: float = 0.0
    prompts: int = 0
    batches: list[float] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float | None:
        return self.new_tokens / self.seconds if self.seconds > 0 else None


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _dtype(device: torch.device) -> torch.dtype:
    # bf16 halves memory on GPUs that support it; CPUs compute bf16 slowly, so they keep float32.
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


class ModelNotLocal(FileNotFoundError):
    """A model or adapter that is not a folder on this machine: evaluation never downloads one."""


def _local_folder(path: str, what: str) -> str:
    if not Path(path).is_dir():
        raise ModelNotLocal(
            f"the {what} {path!r} is not a folder on this machine; evaluation runs offline, as training does, and "
            "never downloads from a model hub: download the model once (e.g. `huggingface-cli download NAME "
            "--local-dir DIR`), register the folder as a base model, and evaluate that"
        )
    return path


def load_model(spec: ModelSpec, *, device: torch.device | str | None = None) -> LoadedModel:
    """Load the base model and merge the adapters, from local folders only (ModelNotLocal otherwise): a hub id would
    make transformers download, from a worker that should never reach the network. local_files_only holds even
    where HF_HUB_OFFLINE is not set (the worker imports huggingface_hub before any setting of ours could apply)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _local_folder(spec.base_path, "base model")
    for adapter in spec.adapters:
        _local_folder(adapter, "adapter")
    target = torch.device(device) if device is not None else pick_device()
    tokenizer = AutoTokenizer.from_pretrained(spec.base_path, local_files_only=True)
    template = use_chat_template(tokenizer, name=spec.chat_template_name, override=spec.chat_template or None)
    if tokenizer.pad_token_id is None:
        # Padded positions are masked out, so any token will do; EOS is the one every causal LM has.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(spec.base_path, dtype=_dtype(target), local_files_only=True)
    for adapter in spec.adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()  # a folder: PEFT reads it directly
    model.to(target)
    model.eval()
    context = getattr(model.config, "max_position_embeddings", None) or DEFAULT_CONTEXT
    return LoadedModel(model=model, tokenizer=tokenizer, device=target, context_length=int(context),
                       chat_template=template)


def render_prompt(loaded: LoadedModel, messages: list[dict[str, str]]) -> str:
    """The prompt text: the model's chat template (the one training used) with the assistant turn opened."""
    return loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def benchmark_prompt(loaded: LoadedModel, benchmark: Benchmark, example: Example, *, max_new_tokens: int = 0
                     ) -> Prompt:
    """How a benchmark's example is put to the model.

    A benchmark with `plain_context` (XCOPA and PAWS-X in lm-evaluation-harness's format) is sent as that plain
    text, without a chat template, as lm-eval sends it by default. Every other prompt goes through the chat template;
    a document too long for the context (XL-Sum's article) is cut from its end first, keeping its opening and the
    instruction after it, as XL-Sum's own models read an article (benchmarks.base.fit_messages).
    """
    plain = getattr(benchmark, "plain_context", None)
    context = plain(example) if plain is not None else None
    if context is not None:
        return Prompt(context, templated=False)
    room = max(1, loaded.context_length - max_new_tokens)
    messages, shortened = fit_messages(
        benchmark, example, lambda candidate: len(encode_prompt(loaded, render_prompt(loaded, candidate))) <= room)
    text = render_prompt(loaded, messages)
    prefix = answer_prefix(loaded, messages, text) if benchmark.task == "classification" else ""
    return Prompt(text, shortened=shortened, answer_prefix=prefix)


def answer_prefix(loaded: LoadedModel, messages: list[dict[str, str]], prompt: str) -> str:
    """The text the chat template puts before an assistant answer that the open prompt does not already hold: render
    the conversation with a marker answer, and take what lies between the prompt and the marker."""
    marker = "\u2063answer\u2063"  # invisible separators around a word: no template writes them itself
    answered = loaded.tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": marker}],
                                                    tokenize=False)
    if not answered.startswith(prompt) or marker not in answered[len(prompt):]:
        return ""
    rest = answered[len(prompt):]
    return rest[:rest.index(marker)]


def _as_prompt(prompt: str | Prompt) -> Prompt:
    return prompt if isinstance(prompt, Prompt) else Prompt(prompt)


def encode_prompt(loaded: LoadedModel, prompt: str | Prompt) -> list[int]:
    """Token ids of a prompt. A chat template writes BOS itself (a second one would shift every position); plain
    text gets the tokenizer's own special tokens, unless it already starts with BOS (lm-eval's tok_encode)."""
    prompt = _as_prompt(prompt)
    tokenizer = loaded.tokenizer
    special = not prompt.templated and not (tokenizer.bos_token and prompt.text.startswith(tokenizer.bos_token))
    return _encode(loaded, prompt.text, special=special)


def _encode(loaded: LoadedModel, text: str, *, special: bool) -> list[int]:
    return loaded.token_cache.encode(loaded.tokenizer, text, special=special)


def _fit(ids: list[int], room: int, bos_id: int | None) -> tuple[list[int], bool]:
    """A prompt cut to `room` tokens from the left, as lm-evaluation-harness cuts a context, but keeping its BOS:
    the model has never seen a text start without one. The end holds the question and the open assistant turn."""
    if len(ids) <= room:
        return ids, False
    if bos_id is not None and ids[0] == bos_id and room > 1:
        return [bos_id, *ids[len(ids) - room + 1:]], True
    return ids[-room:], True


def _left_pad(rows: Sequence[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, width - len(row):] = torch.tensor(row, dtype=torch.long)
        attention[index, width - len(row):] = 1
    return input_ids.to(device), attention.to(device)


def _new_token_count(row: torch.Tensor, eos_ids: set[int]) -> int:
    """Tokens generated up to and including the first EOS; generate() pads a finished row after it, and a row
    that never ended ran to the batch's full width."""
    for index, token in enumerate(row.tolist()):
        if token in eos_ids:
            return index + 1
    return len(row)


def _eos_ids(loaded: LoadedModel) -> set[int]:
    configured = loaded.model.generation_config.eos_token_id
    ids = set(configured) if isinstance(configured, list) else {configured} if configured is not None else set()
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(loaded.tokenizer.eos_token_id)
    return ids


@_inference_mode
def generate(
    loaded: LoadedModel,
    prompts: Sequence[str | Prompt],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    on_batch: Callable[[list[int], list[Generation]], None] | None = None,
    throughput: Throughput | None = None,
) -> list[Generation]:
    """Greedy continuations of `prompts`, in their order. `on_batch(indices, generations)` runs after each batch
    (the caller saves outputs as they come, so a crash keeps what was done). A bare string is a prompt rendered by
    the chat template (render_prompt)."""
    tokenizer = loaded.tokenizer
    room = max(1, loaded.context_length - max_new_tokens)
    encoded = []  # (ids, truncated)
    for prompt in map(_as_prompt, prompts):
        ids, cut = _fit(encode_prompt(loaded, prompt), room, tokenizer.bos_token_id)
        encoded.append((ids, cut or prompt.shortened))
    order = sorted(range(len(prompts)), key=lambda index: -len(encoded[index][0]))
    eos_ids = _eos_ids(loaded)
    results: list[Generation | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        input_ids, attention = _left_pad([encoded[i][0] for i in indices], tokenizer.pad_token_id, loaded.device)
        began = time.perf_counter()
        sequences = loaded.model.generate(
            input_ids=input_ids, attention_mask=attention, do_sample=False, num_beams=1,
            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
            # Greedy means greedy: a model's generation_config may ask for sampling knobs we must not inherit.
            temperature=None, top_p=None, top_k=None,
        )
        elapsed = time.perf_counter() - began
        new = sequences[:, input_ids.shape[1]:]
        batch = []
        for row, index in zip(new, indices, strict=True):
            count = _new_token_count(row, eos_ids)
            text = tokenizer.decode(row[:count], skip_special_tokens=True).strip()
            batch.append(Generation(text=text, new_tokens=count, truncated_prompt=encoded[index][1]))
            results[index] = batch[-1]
        if throughput is not None:
            throughput.new_tokens += sum(item.new_tokens for item in batch)
            throughput.seconds += elapsed
            throughput.prompts += len(batch)
            throughput.batches.append(elapsed)
        if on_batch is not None:
            on_batch(indices, batch)
    return [result for result in results if result is not None]


@dataclass
class ScoringStats:
    """What log-likelihood scoring did, summed over calls: requests (prompt, option), the rows the model ran (options
    sharing a row counted once), their tokens, batches, and the seconds in the model's forward passes."""

    requests: int = 0
    rows: int = 0
    tokens: int = 0
    batches: int = 0
    seconds: float = 0.0


@_inference_mode
def score_options(
    loaded: LoadedModel,
    prompts: Sequence[str | Prompt],
    options: Sequence[Sequence[str]],
    *,
    batch_size: int = 8,
    on_batch: Callable[[list[int], list[list[float]]], None] | None = None,
    stats: ScoringStats | None = None,
) -> list[list[float]]:
    """For each prompt, the log-likelihood of each of its options as the continuation: the sum over the option's
    tokens of log p(token | prompt, earlier option tokens), as lm-evaluation-harness computes `loglikelihood`
    (and splits a plain-text context from its option as lm-eval does, `_encode_pair`). The prediction is the argmax.
    `on_batch(prompt indices, their scores)` runs as prompts complete. `batch_size` counts rows (forward passes):
    options that share their row (same context, one-token answers) take one."""
    if len(prompts) != len(options):
        raise ValueError(f"{len(prompts)} prompts but {len(options)} option lists")
    requests = []  # (prompt index, option index, context ids, continuation ids)
    for p_index, (prompt, choices) in enumerate(zip(map(_as_prompt, prompts), options, strict=True)):
        for o_index, option in enumerate(choices):
            context, continuation = _encode_pair(loaded, prompt, option)
            if not continuation:
                raise ValueError(f"option {o_index} of prompt {p_index} is empty: nothing to score")
            room = max(1, loaded.context_length - len(continuation))
            context = _fit(context, room, loaded.tokenizer.bos_token_id)[0]
            if not context:
                raise ValueError(f"prompt {p_index} encodes to no tokens: there is nothing to score option "
                                 f"{o_index} after")
            requests.append((p_index, o_index, context, continuation))
    # The model reads context + continuation less its last token (nothing is predicted after it); requests whose
    # inputs are the same share one row: "A", "B", "C", "D" after one Belebele question are one forward pass.
    rows: dict[tuple[int, ...], list[int]] = {}
    for index, (_, _, context, continuation) in enumerate(requests):
        rows.setdefault(tuple(context + continuation[:-1]), []).append(index)
    # Longest first (an out-of-memory error comes at once), ties by content as lm-eval orders them.
    order = sorted(rows, key=lambda ids: (-len(ids), ids))
    scores: list[list[float]] = [[math.nan] * len(choices) for choices in options]
    remaining = [len(choices) for choices in options]
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        began = time.perf_counter()
        values = _score_rows(loaded, chunk, [[requests[i] for i in rows[ids]] for ids in chunk])
        if stats is not None:
            stats.seconds += time.perf_counter() - began
            stats.rows += len(chunk)
            stats.tokens += sum(map(len, chunk))
            stats.batches += 1
            stats.requests += sum(len(rows[ids]) for ids in chunk)
        completed = []
        for ids, row_values in zip(chunk, values, strict=True):
            for index, value in zip(rows[ids], row_values, strict=True):
                p_index, o_index = requests[index][:2]
                scores[p_index][o_index] = value
                remaining[p_index] -= 1
                if remaining[p_index] == 0:
                    completed.append(p_index)
        if on_batch is not None and completed:
            on_batch(completed, [scores[i] for i in completed])
    return scores


def _encode_pair(loaded: LoadedModel, prompt: Prompt, option: str) -> tuple[list[int], list[int]]:
    """(context ids, option ids). After a chat template, the prompt keeps exactly the tokens generation would see and
    the option is encoded on its own. A plain-text context is split from its option as lm-evaluation-harness does
    (lm_eval/api/model.py, `loglikelihood` and `_encode_pair`): an empty context is BOS (EOS for a tokenizer without
    one); otherwise trailing spaces move from the context to the option, and the option's tokens are those of
    context + option past the context's own."""
    tokenizer = loaded.tokenizer
    if prompt.templated:
        answer = _encode(loaded, prompt.answer_prefix + option, special=False)
        return encode_prompt(loaded, prompt), answer
    if prompt.text == "":
        continuation = _encode(loaded, option, special=False)
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if continuation[:1] == [prefix]:
            return continuation[:1], continuation[1:]
        return [prefix], continuation
    context, continuation_text = prompt.text, option
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation_text = context[:-spaces], context[-spaces:] + continuation_text
    context_ids = encode_prompt(loaded, Prompt(context, templated=False))
    whole = encode_prompt(loaded, Prompt(context + continuation_text, templated=False))
    return context_ids, whole[len(context_ids):]


@functools.cache
def _keeps_logits(forward: Callable) -> bool:
    """Whether the model's forward takes `logits_to_keep` (every causal LM of transformers 5 does): the output layer
    then runs on the positions that predict a continuation only, not on every context token."""
    try:
        return "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


def _score_rows(loaded: LoadedModel, rows: list[tuple[int, ...]],
                requests: list[list[tuple[int, int, list[int], list[int]]]]) -> list[list[float]]:
    """One forward pass over `rows` padded on the right; for each row, the log-likelihood of each of its requests."""
    width = len(rows[0])  # the longest row: rows come sorted longest first
    input_ids = torch.full((len(rows), width), loaded.tokenizer.pad_token_id, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, :len(row)] = torch.tensor(row, dtype=torch.long)
    # The continuation's token i sits at position len(context) + i and is predicted at position len(context) + i - 1.
    first = min(len(context) - 1 for row_requests in requests for _, _, context, _ in row_requests)
    kwargs = {"logits_to_keep": width - first} if _keeps_logits(type(loaded.model).forward) else {}
    logits = loaded.model(input_ids=input_ids.to(loaded.device), **kwargs).logits
    offset = width - logits.shape[1]  # position p's logits are at p - offset
    values = []
    for index, (row, row_requests) in enumerate(zip(rows, requests, strict=True)):
        begin = min(len(context) - 1 for _, _, context, _ in row_requests)
        log_probs = torch.log_softmax(logits[index, begin - offset:len(row) - offset].float(), dim=-1)
        row_values = []
        for _, _, context, continuation in row_requests:
            at = len(context) - 1 - begin
            targets = torch.tensor(continuation, device=log_probs.device).unsqueeze(-1)
            row_values.append(float(log_probs[at:at + len(continuation)].gather(-1, targets).sum()))
        values.append(row_values)
    return values
