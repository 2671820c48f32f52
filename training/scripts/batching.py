"""Micro-batches that fill the card: the largest per-device micro-batch that fits the GPU's memory, with the
gradient accumulation cut to keep the preset's effective batch (rows per optimizer step) exactly as it was.

The presets fix the effective batch (training/presets.py: up to the paper's 256) and a micro-batch of 8, which on an
80-140 GiB card leaves most of it idle (docs/benchmarks.md: a 1.1B model at 4 x 1024 reached 0.13 MFU, at 16 x 1024
0.30). Once the trainer is built (the model wrapped with LoRA and on its device, the data tokenized), `fit` tries
one forward and backward pass at each candidate micro-batch, ascending, on the longest rows the data has (the worst
batch the run will see, padded as the collator pads), and keeps the largest whose peak memory stays under
`micro_batch_memory_fraction` of the card; the first that does not fit (or runs out of memory) ends the search.
Candidates divide the effective batch per device, so micro x accumulation is unchanged: the same rows per step,
the same learning-rate schedule, the same number of optimizer steps.

Every process probes its own card and they agree on the smallest result (an all-reduce), so that no rank runs a
different accumulation than the others. Only with CUDA: on a CPU the probe would measure nothing (no allocator
statistics) and the run keeps the preset's settings, unless `auto_micro_batch: true` asks for the search anyway, in
which case "fits" means "the step ran" (used by the CPU tests to drive the real path).

What was chosen, and every probe, goes into the manifest under `micro_batch`. Django-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Headroom for what the probe does not see: the optimizer's LoRA states, the allocator's fragmentation over a long
# run, and batches whose rows all reach the longest length at once.
DEFAULT_MEMORY_FRACTION = 0.85
GIB = 1024**3


@dataclass
class Probe:
    micro_batch: int
    fits: bool
    peak_gib: float | None = None
    error: str = ""


@dataclass
class BatchPlan:
    """The outcome, as the manifest records it."""

    enabled: bool
    reason: str
    preset_micro_batch: int
    preset_accumulation: int
    micro_batch: int
    accumulation: int
    sequence_length: int = 0
    sequences_per_row: int = 1
    memory_gib: float | None = None
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    probes: list[Probe] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return asdict(self)


def candidates(*, micro_batch: int, accumulation: int) -> list[int]:
    """Micro-batches to try, ascending: every divisor of the effective batch per device that is larger than the
    preset's micro-batch (the preset's own is known to be wanted; a smaller one would only be slower)."""
    effective = micro_batch * accumulation
    return [size for size in range(micro_batch + 1, effective + 1) if effective % size == 0]


def search(sizes: Sequence[int], fits: Callable[[int], Probe]) -> tuple[int | None, list[Probe]]:
    """The largest size that fits, trying them in ascending order and stopping at the first that does not (memory
    grows with the batch); None when not even the first fits."""
    probes, best = [], None
    for size in sizes:
        probe = fits(size)
        probes.append(probe)
        if not probe.fits:
            break
        best = size
    return best, probes


def longest_row(dataset: Any, *, kind: str, max_length: int) -> tuple[int, int]:
    """(tokens of the longest row as the trainer will see it, capped at max_length; sequences per row in a forward
    pass): SFT rows are input_ids; a DPO row is its prompt followed by the chosen and by the rejected answer, both
    in one forward pass."""
    if kind == "dpo":
        prompts = dataset["prompt_ids"]
        chosen, rejected = dataset["chosen_ids"], dataset["rejected_ids"]
        length = max((len(p) + max(len(c), len(r)) for p, c, r in zip(prompts, chosen, rejected, strict=True)),
                     default=1)
        return min(length, max_length), 2
    length = max((len(ids) for ids in dataset["input_ids"]), default=1)
    return min(length, max_length), 1


def _step(model: Any, *, rows: int, length: int, vocab: int, device: Any, dtype: Any) -> None:
    """One forward and backward pass on `rows` random sequences of `length` tokens; gradients dropped after."""
    import torch

    input_ids = torch.randint(low=0, high=vocab, size=(rows, length), device=device)
    autocast = torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)
    try:
        with autocast:
            loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
    finally:
        model.zero_grad(set_to_none=True)


def probe_function(model: Any, *, length: int, sequences_per_row: int, vocab: int, device: Any, dtype: Any,
                   budget_bytes: int | None) -> Callable[[int], Probe]:
    """fits(micro_batch): run one step; on CUDA, compare the peak memory with the budget."""
    import torch

    cuda = device.type == "cuda"

    def fits(micro_batch: int) -> Probe:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            _step(model, rows=micro_batch * sequences_per_row, length=length, vocab=vocab, device=device,
                  dtype=dtype)
        except torch.OutOfMemoryError as exc:
            if cuda:
                torch.cuda.empty_cache()
            return Probe(micro_batch, False, None, f"out of memory: {str(exc).splitlines()[0][:200]}")
        if not cuda:
            return Probe(micro_batch, True)
        peak = torch.cuda.max_memory_allocated(device)
        torch.cuda.empty_cache()
        return Probe(micro_batch, budget_bytes is None or peak <= budget_bytes, round(peak / GIB, 2))

    return fits


def _agree(trainer: Any, micro_batch: int) -> int:
    """The smallest choice over all processes, so that every rank accumulates the same number of micro-batches."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return micro_batch
    value = torch.tensor([micro_batch], device=trainer.args.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return int(value.item())


def _wanted(setting: bool | str, *, cuda: bool) -> tuple[bool, str]:
    if setting is False:
        return False, "auto_micro_batch is false"
    if setting == "auto" and not cuda:
        return False, "no CUDA GPU: the preset's micro-batch is kept (nothing to measure memory with)"
    return True, "probed on the GPU" if cuda else "asked for on a CPU: the largest micro-batch that runs"


def fit(trainer: Any, *, kind: str, setting: bool | str, memory_fraction: float, max_length: int) -> BatchPlan:
    """Probe and apply (see the module docstring); returns what the manifest records."""
    import torch

    args = trainer.args
    plan = BatchPlan(enabled=False, reason="", preset_micro_batch=args.per_device_train_batch_size,
                     preset_accumulation=args.gradient_accumulation_steps,
                     micro_batch=args.per_device_train_batch_size, accumulation=args.gradient_accumulation_steps,
                     memory_fraction=memory_fraction)
    plan.enabled, plan.reason = _wanted(setting, cuda=torch.cuda.is_available())
    sizes = candidates(micro_batch=plan.micro_batch, accumulation=plan.accumulation)
    if plan.enabled and not sizes:
        plan.enabled, plan.reason = False, "the preset's micro-batch already equals the effective batch per device"
    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        plan.enabled, plan.reason = False, "DeepSpeed/FSDP shard the model: their memory is not probed here"
    if not plan.enabled:
        return plan
    model = trainer.model
    device = next(model.parameters()).device
    plan.sequence_length, plan.sequences_per_row = longest_row(trainer.train_dataset, kind=kind,
                                                               max_length=max_length)
    budget = None
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        plan.memory_gib = round(total / GIB, 1)
        budget = int(total * memory_fraction)
    dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    vocab = int(getattr(model.config, "vocab_size", 0) or 1000)
    fits = probe_function(model, length=plan.sequence_length, sequences_per_row=plan.sequences_per_row, vocab=vocab,
                          device=device, dtype=dtype, budget_bytes=budget)
    _checkpoint_activations(trainer)
    was_training = model.training
    model.train()
    try:
        best, plan.probes = search(sizes, fits)
    finally:
        model.train(was_training)
    chosen = _agree(trainer, best or plan.micro_batch)
    apply(trainer, micro_batch=chosen, effective=plan.micro_batch * plan.accumulation)
    plan.micro_batch, plan.accumulation = chosen, args.gradient_accumulation_steps
    return plan


def _checkpoint_activations(trainer: Any) -> None:
    """Turn activation checkpointing on now, as train() will (transformers 5 does it when training starts): a probe
    without it would measure every layer's activations and pick a needlessly small micro-batch."""
    args, model = trainer.args, trainer.model
    if not getattr(args, "activation_checkpointing", False) or getattr(model, "is_activation_checkpointing", False):
        return
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        kwargs = dict(getattr(args, "activation_checkpointing_kwargs", None) or {})
        kwargs.pop("every_n_layers", None)
        kwargs.pop("offload", None)
        enable(activation_checkpointing_kwargs=kwargs or None)


def apply(trainer: Any, *, micro_batch: int, effective: int) -> None:
    """Set the micro-batch and accumulation on a built trainer. transformers' Trainer reads the batch size for its
    data loader from `_train_batch_size` (copied at init) and accumulates itself (accelerate is told 1), so both
    may change until train() starts."""
    args = trainer.args
    args.per_device_train_batch_size = micro_batch
    args.gradient_accumulation_steps = effective // micro_batch
    trainer._train_batch_size = args.train_batch_size
