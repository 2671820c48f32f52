"""LoRA supervised fine-tuning with TRL's SFTTrainer, configured by one YAML file (fields: SFTRunConfig in common.py).

Rows are conversational, one JSON object per line (or Parquet): {"messages": [{"role": "user", "content": ...},
{"role": "assistant", "content": ...}]}; other columns are ignored. The base model's chat template renders them
(chat_templates.py: `chat_template`, else `chat_template_name`, else the tokenizer's own, else "Question: … Answer:").

# One process (CPU or one GPU)
```bash
python training/scripts/sft.py --config training/configs/sft_paper.yaml
```

# Several processes / GPUs (only the main process writes metrics.jsonl and manifest.json)
```bash
accelerate launch --config_file training/configs/accelerate/cpu.yaml --num_processes 2 \
    training/scripts/sft.py --config run.yaml
accelerate launch --config_file training/configs/accelerate/multi_gpu.yaml --num_processes 4 \
    training/scripts/sft.py --config training/configs/sft_paper.yaml
```

Outputs in output_dir: metrics.jsonl, checkpoint-<step>/, adapter/, manifest.json (last). Touch output_dir/CANCEL
to stop at the next step; rerun with `resume_from_checkpoint: auto` to continue. Exit codes: see common.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file (python training/scripts/sft.py, accelerate launch): make `training` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.scripts.common import (  # noqa: E402
    CheckpointMetadataCallback,
    MetricsCallback,
    SFTRunConfig,
    dataset_hashes,
    fit_micro_batch,
    hold_output_dir,
    load_base_model,
    load_rows,
    load_tokenizer,
    lora_config,
    run_script,
    train_and_finish,
    trainer_arguments,
)


def main(config: SFTRunConfig) -> int:
    hold_output_dir(config)  # a second trainer on this folder exits here, before it reads anything
    from trl import SFTConfig, SFTTrainer

    hashes = dataset_hashes(config)
    train_rows = load_rows(config.train_file, field_name="train_file", columns=["messages"])
    eval_rows = load_rows(config.eval_file, field_name="eval_file", columns=["messages"]) if config.eval_file else None
    training_args = SFTConfig(
        **trainer_arguments(config),
        packing=config.packing,
        assistant_only_loss=config.assistant_only_loss,
    )
    tokenizer, template = load_tokenizer(config)
    metrics_callback = MetricsCallback(config.output_dir)
    trainer = SFTTrainer(
        model=load_base_model(config),
        args=training_args,
        train_dataset=train_rows.select_columns(["messages"]),
        eval_dataset=eval_rows.select_columns(["messages"]) if eval_rows is not None else None,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[metrics_callback, CheckpointMetadataCallback(config, hashes)],
    )
    batches = fit_micro_batch(trainer, kind="sft", config=config)
    return train_and_finish(trainer, metrics_callback, kind="sft", config=config, hashes=hashes,
                            extra={"train_rows": len(train_rows), "chat_template": template.record(),
                                   "micro_batch": batches})


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="LoRA SFT with TRL (see the module docstring for commands).")
    parser.add_argument("--config", required=True, type=Path, help="YAML file with SFTRunConfig fields")
    return parser


if __name__ == "__main__":
    arguments = make_parser().parse_args()
    sys.exit(run_script(main, arguments.config, SFTRunConfig))
