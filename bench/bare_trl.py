"""A bare TRL run: plain SFTTrainer or DPOTrainer with a peft LoraConfig and nothing of Crossfeed's, the baseline that
bench/gpu_check.py (section a) measures training/scripts/sft.py and dpo.py against, in the same run.

    python bench/bare_trl.py --stage sft --config settings.json
    python bench/bare_trl.py --stage dpo --config settings.json

settings.json holds the same fields, under the same names, as the YAML run config gpu_check.py gives sft.py or dpo.py
(model_name_or_path, train_file, output_dir, the LoRA and trainer fields, bf16, ...): the two sides cannot drift
apart. What this script does is what a person would write from TRL's documentation: load the model and tokenizer,
read the JSONL with `datasets`, hand both to the trainer with a LoraConfig, train, save the adapter. DPO on top of an
SFT adapter merges it first with peft's merge_and_unload, as dpo.py does with `adapter_path`.

It writes <output_dir>/metrics.jsonl in the shape sft.py and dpo.py write it (one "log" line per logged step, with
the step, an ISO timestamp and the trainer's logs), kept in memory until the end: the only addition to plain TRL,
and a cheaper one than Crossfeed's own per-step file append, so any cost of ours shows in the comparison.
Django-free and Crossfeed-free: it imports nothing from this repository.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def trainer_settings(settings: dict, *, use_cpu: bool) -> dict:
    """TrainingArguments fields, from the settings that sft.py/dpo.py read under the same names."""
    same_name = ("output_dir", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim",
                 "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "seed",
                 "max_length", "save_steps")
    return {
        **{name: settings[name] for name in same_name},
        "bf16": bool(settings["bf16"]),
        "fp16": False,
        "use_cpu": use_cpu,
        "activation_checkpointing": settings["gradient_checkpointing"],
        "use_liger_kernel": bool(settings["use_liger_kernel"]),
        "save_strategy": "steps",
        "report_to": "none",
        "disable_tqdm": True,
    }


def log_clock():
    """A TrainerCallback that keeps each log with its step and time; written once, after training."""
    from transformers import TrainerCallback

    class LogClock(TrainerCallback):
        def __init__(self) -> None:
            self.lines: list[dict] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.lines.append({"event": "log", "step": state.global_step,
                               "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"), **(logs or {})})

    return LogClock()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("sft", "dpo"), required=True)
    parser.add_argument("--config", type=Path, required=True, help="JSON settings (see the docstring)")
    args = parser.parse_args()
    settings = json.loads(args.config.read_text(encoding="utf-8"))

    import torch
    from datasets import load_dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    dtype = torch.bfloat16 if settings["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(settings["model_name_or_path"], dtype=dtype)
    if settings.get("adapter_path"):
        model = PeftModel.from_pretrained(model, settings["adapter_path"]).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(settings["model_name_or_path"])
    columns = ["messages"] if args.stage == "sft" else ["prompt", "chosen", "rejected"]
    data = load_dataset("json", data_files=settings["train_file"], split="train").select_columns(columns)
    lora = LoraConfig(r=settings["lora_r"], lora_alpha=settings["lora_alpha"], lora_dropout=settings["lora_dropout"],
                      target_modules=list(settings["lora_target_modules"]), bias="none", task_type="CAUSAL_LM")
    common = trainer_settings(settings, use_cpu=not torch.cuda.is_available())
    clock = log_clock()
    if args.stage == "sft":
        trainer = SFTTrainer(model=model, args=SFTConfig(**common), train_dataset=data, processing_class=tokenizer,
                             peft_config=lora, callbacks=[clock])
    else:
        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=settings["beta"]), train_dataset=data,
                             processing_class=tokenizer, peft_config=lora, callbacks=[clock])
    trainer.train()
    output = Path(settings["output_dir"])
    trainer.save_model(str(output / "adapter"))
    (output / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in clock.lines), encoding="utf-8")
    if hasattr(trainer, "end"):  # transformers >= 5.18: close the process group so the launcher exits cleanly
        trainer.end()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
