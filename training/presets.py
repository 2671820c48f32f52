"""The batch, logging and checkpoint settings of the "scaled" preset, worked out from the size of a run's data.

The paper's settings (training/configs/*_paper.yaml) are absolute: 256 sequences per optimizer step, 100 warm-up
steps, a log line every 10 steps. They suit its 300,000-step SFT run, not an export of a few hundred pairs: one
epoch of 300 pairs at 256 per step is 2 optimizer steps, both inside the 100-step warm-up (the learning rate peaks
at 2 / 100 = 2 % of the paper's), and with a log line every 10 steps the live charts stay empty. Any export under
100 x 256 = 25,600 pairs trains entirely in warm-up.

The scaled preset (training/configs/*_scaled.yaml, the default) keeps the paper's learning rates, LoRA, lengths and
schedule, takes its warm-up as a share of the run (`warmup_steps` below 1 is a ratio to transformers), and sets:

- the effective batch to the largest power of two at most rows / 32, from 1 up to the paper's 256, so an epoch has
  at least 32 optimizer steps when there are rows enough:
      300 pairs:    300 / 32 = 9.4     -> 8 per step,   ceil(300 / 8)      =  38 steps
      10,000 pairs: 10,000 / 32 = 312  -> 256 per step, ceil(10,000 / 256) =  40 steps
      100,000:                          -> 256 per step, ceil(100,000 / 256) = 391 steps
- the micro-batch to the paper's 8 per device (less when the effective batch is smaller), and the gradient
  accumulation to what is left: 256 on 4 processes = 8 per device x 8 accumulation x 4;
- the logging interval to a 50th of the run (at least every step): 38 steps -> every step, 391 -> every 7th;
- the checkpoint interval to a 10th of the run: 38 steps -> every 4th, 391 -> every 40th.

A setting the run gives in `params` is kept, and the others are worked out around it. Django-free and pure.
"""

from __future__ import annotations

import math
from typing import Any

PAPER_EFFECTIVE_BATCH = 256  # SFT: 8 per device x 8 accumulation x 4 GPUs; DPO: 8 x 4 x 8
PAPER_MICRO_BATCH = 8  # per device, in both of the paper's stages
MIN_STEPS_PER_EPOCH = 32
LOG_POINTS = 50
CHECKPOINTS = 10
# The settings worked out here; everything else comes from the preset file.
SCALED_FIELDS = ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps")


def effective_batch(rows: int) -> int:
    """Rows per optimizer step: the largest power of two <= rows / MIN_STEPS_PER_EPOCH, in [1, 256]."""
    target = max(1, rows // MIN_STEPS_PER_EPOCH)
    return min(PAPER_EFFECTIVE_BATCH, 1 << (target.bit_length() - 1))


def optimizer_steps(*, rows: int, micro_batch: int, accumulation: int, processes: int, epochs: float,
                    max_steps: int = -1) -> int:
    """The optimizer steps transformers' Trainer will run (its arithmetic in transformers 5): each process reads
    ceil(rows / processes) rows in micro-batches; an epoch is ceil(micro-batches / accumulation) steps."""
    if max_steps > 0:
        return max_steps
    micro_batches = math.ceil(math.ceil(rows / processes) / micro_batch)
    per_epoch = max(1, math.ceil(micro_batches / accumulation))
    return math.ceil(epochs * per_epoch)


def scaled_settings(*, rows: int, processes: int = 1, epochs: float = 1.0, max_steps: int = -1,
                    given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The four SCALED_FIELDS for `rows` training rows on `processes` processes; values in `given` (the run's own
    params) are kept as they are and the rest fitted around them."""
    given = given or {}

    def pick(name: str, fitted: int) -> int:
        # A given value that is not a positive whole number is kept too: the config validation reports it.
        value = given.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else fitted

    target = effective_batch(rows)
    micro = pick("per_device_train_batch_size", min(PAPER_MICRO_BATCH, max(1, target // processes)))
    accumulation = pick("gradient_accumulation_steps", max(1, target // (micro * processes)))
    steps = optimizer_steps(rows=rows, micro_batch=micro, accumulation=accumulation, processes=processes,
                            epochs=epochs, max_steps=max_steps)
    fitted = {
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": accumulation,
        "logging_steps": pick("logging_steps", max(1, steps // LOG_POINTS)),
        "save_steps": pick("save_steps", max(1, math.ceil(steps / CHECKPOINTS))),
    }
    return {**fitted, **{name: given[name] for name in SCALED_FIELDS if name in given}}
