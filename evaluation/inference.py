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
"""

from __future__ import annotations

import functools
import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


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
    chat_template: str = ""  # overrides the tokenizer's own when set


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: torch.device
    context_length: int

    @property
    def uses_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


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


def load_model(spec: ModelSpec, *, device: torch.device | str | None = None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = torch.device(device) if device is not None else pick_device()
    tokenizer = AutoTokenizer.from_pretrained(spec.base_path)
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template
    if tokenizer.pad_token_id is None:
        # Padded positions are masked out, so any token will do; EOS is the one every causal LM has.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(spec.base_path, dtype=_dtype(target))
    for adapter in spec.adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.to(target)
    model.eval()
    context = getattr(model.config, "max_position_embeddings", None) or DEFAULT_CONTEXT
    return LoadedModel(model=model, tokenizer=tokenizer, device=target, context_length=int(context))


def render_prompt(loaded: LoadedModel, messages: list[dict[str, str]]) -> str:
    """The prompt text: the chat template with the assistant turn opened, or the plain text for base models."""
    if loaded.uses_chat_template:
        return loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(message["content"] for message in messages) + "\n\n"


def encode_prompt(loaded: LoadedModel, prompt: str) -> list[int]:
    # A chat template writes BOS itself; letting the tokenizer add another would shift every position.
    return loaded.tokenizer(prompt, add_special_tokens=not loaded.uses_chat_template)["input_ids"]


def _fit(ids: list[int], room: int) -> tuple[list[int], bool]:
    """Keep the end of a prompt that does not fit: it holds the instruction and the open assistant turn."""
    return (ids, False) if len(ids) <= room else (ids[-room:], True)


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
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    on_batch: Callable[[list[int], list[Generation]], None] | None = None,
    throughput: Throughput | None = None,
) -> list[Generation]:
    """Greedy continuations of `prompts`, in their order. `on_batch(indices, generations)` runs after each batch
    (the caller saves outputs as they come, so a crash keeps what was done)."""
    tokenizer = loaded.tokenizer
    room = max(1, loaded.context_length - max_new_tokens)
    encoded = [_fit(encode_prompt(loaded, prompt), room) for prompt in prompts]
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


@_inference_mode
def score_options(
    loaded: LoadedModel,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    *,
    batch_size: int = 8,
    on_batch: Callable[[list[int], list[list[float]]], None] | None = None,
) -> list[list[float]]:
    """For each prompt, the log-likelihood of each of its options as the continuation: the sum over the option's
    tokens of log p(token | prompt, earlier option tokens), as lm-evaluation-harness computes `loglikelihood`.
    The prediction is the argmax. `on_batch(prompt indices, their scores)` runs as prompts complete."""
    if len(prompts) != len(options):
        raise ValueError(f"{len(prompts)} prompts but {len(options)} option lists")
    requests = []  # (prompt index, option index, context ids, continuation ids)
    for p_index, (prompt, choices) in enumerate(zip(prompts, options, strict=True)):
        context = encode_prompt(loaded, prompt)
        for o_index, option in enumerate(choices):
            continuation = loaded.tokenizer(option, add_special_tokens=False)["input_ids"]
            if not continuation:
                raise ValueError(f"option {o_index} of prompt {p_index} is empty: nothing to score")
            room = loaded.context_length - len(continuation)
            requests.append((p_index, o_index, _fit(context, max(1, room))[0], continuation))
    scores: list[list[float]] = [[math.nan] * len(choices) for choices in options]
    remaining = [len(choices) for choices in options]
    order = sorted(range(len(requests)), key=lambda i: -(len(requests[i][2]) + len(requests[i][3])))
    for start in range(0, len(order), batch_size):
        chunk = [requests[i] for i in order[start:start + batch_size]]
        completed = []
        for (p_index, o_index, _, _), value in zip(chunk, _score_batch(loaded, chunk), strict=True):
            scores[p_index][o_index] = value
            remaining[p_index] -= 1
            if remaining[p_index] == 0:
                completed.append(p_index)
        if on_batch is not None and completed:
            on_batch(completed, [scores[i] for i in completed])
    return scores


def _score_batch(loaded: LoadedModel, chunk: list[tuple[int, int, list[int], list[int]]]) -> list[float]:
    rows = [context + continuation for _, _, context, continuation in chunk]
    input_ids, attention = _left_pad(rows, loaded.tokenizer.pad_token_id, loaded.device)
    # Position ids from the mask, as generate() makes them: a left-padded row scores as it would alone.
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = loaded.model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    width = input_ids.shape[1]
    values = []
    for row, (_, _, _, continuation) in enumerate(chunk):
        # The token at position t is predicted by the logits at t - 1; the continuation fills the row's end.
        targets = torch.tensor(continuation, device=loaded.device)
        first = width - len(continuation)
        predicted = log_probs[row, first - 1:width - 1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        values.append(float(predicted.sum()))
    return values
