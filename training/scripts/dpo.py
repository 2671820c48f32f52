"""LoRA DPO with TRL's DPOTrainer, configured by one YAML file (fields: DPORunConfig in common.py).

Rows are TRL conversational preference pairs, one JSON object per line (or Parquet), as Crossfeed exports them:
{"prompt": [{"role": "user", ...}], "chosen": [{"role": "assistant", ...}], "rejected": [...], "prompt_language":
..., "item": ..., "votes_for": ..., "split": "train"}. Only prompt/chosen/rejected reach the trainer; when a
`split` column exists, only rows with split "train" are trained on. The base model's chat template renders them, as
in sft.py (chat_templates.py).

Like the paper, DPO can start from the SFT model: set `adapter_path` to the SFT adapter and it is merged into the
base (merge_and_unload) before a new LoRA is trained on top; the merged SFT model is also the DPO reference
(TRL computes reference log-probs with the new adapter disabled).

# One process (CPU or one GPU)
```bash
python training/scripts/dpo.py --config run.yaml
```

# Several processes / GPUs (only the main process writes metrics.jsonl and manifest.json)
```bash
accelerate launch --config_file training/configs/accelerate/cpu.yaml --num_processes 2 \
    training/scripts/dpo.py --config run.yaml
accelerate launch --config_file training/configs/accelerate/multi_gpu.yaml --num_processes 8 \
    training/scripts/dpo.py --config training/configs/dpo_paper.yaml
```

Outputs in output_dir: metrics.jsonl (loss, rewards/accuracies, rewards/margins, ...), checkpoint-<step>/,
adapter/, manifest.json (last). Touch output_dir/CANCEL to stop at the next step. Exit codes: see common.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file (python training/scripts/dpo.py, accelerate launch): make `training` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.scripts.common import (  # noqa: E402
    CheckpointMetadataCallback,
    ConfigError,
    DPORunConfig,
    MetricsCallback,
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

PAIR_COLUMNS = ["prompt", "chosen", "rejected"]


def load_pairs(path: str, *, field_name: str, train_split_only: bool):
    """Preference pairs with the metadata columns (languages, votes, item, ...) dropped."""
    rows = load_rows(path, field_name=field_name, columns=PAIR_COLUMNS)
    if train_split_only and "split" in rows.column_names:
        # An export may hold held-out pairs in the same file; training on them would leak into evaluation.
        rows = rows.filter(lambda row: row["split"] in (None, "train"))
        if len(rows) == 0:
            raise ConfigError(f"{field_name}: {path} has no rows with split 'train'")
    return rows.select_columns(PAIR_COLUMNS)


def load_policy_model(config: DPORunConfig):
    """The base model, with the SFT adapter merged in when adapter_path is set (the paper's starting point)."""
    model = load_base_model(config)
    if config.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter_path).merge_and_unload()
    return model


def truncate_prompts(dataset, max_prompt_length: int | None):
    """Keep the last max_prompt_length prompt tokens: the end holds the question and the assistant marker.

    TRL 1.16's DPOConfig has no max_prompt_length (only max_length, cutting prompt + completion from the end), so
    the paper's 512-token prompt limit is applied here to the tokenized `prompt_ids`.
    """
    if dataset is None or max_prompt_length is None:
        return dataset
    return dataset.map(lambda row: {"prompt_ids": row["prompt_ids"][-max_prompt_length:]})


def main(config: DPORunConfig) -> int:
    hold_output_dir(config)  # a second trainer on this folder exits here, before it reads anything
    from trl import DPOConfig, DPOTrainer

    hashes = dataset_hashes(config)
    train_pairs = load_pairs(config.train_file, field_name="train_file", train_split_only=True)
    eval_pairs = (
        load_pairs(config.eval_file, field_name="eval_file", train_split_only=False) if config.eval_file else None
    )
    training_args = DPOConfig(**trainer_arguments(config), beta=config.beta)
    tokenizer, template = load_tokenizer(config)
    metrics_callback = MetricsCallback(config.output_dir)
    trainer = DPOTrainer(
        model=load_policy_model(config),
        args=training_args,
        train_dataset=train_pairs,
        eval_dataset=eval_pairs,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[metrics_callback, CheckpointMetadataCallback(config, hashes)],
    )
    with trainer.accelerator.main_process_first():  # the main process fills the datasets cache, the others read it
        trainer.train_dataset = truncate_prompts(trainer.train_dataset, config.max_prompt_length)
        trainer.eval_dataset = truncate_prompts(trainer.eval_dataset, config.max_prompt_length)
    batches = fit_micro_batch(trainer, kind="dpo", config=config)
    return train_and_finish(trainer, metrics_callback, kind="dpo", config=config, hashes=hashes,
                            extra={"train_rows": len(train_pairs), "sft_adapter": config.adapter_path,
                                   "chat_template": template.record(), "micro_batch": batches})


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="LoRA DPO with TRL (see the module docstring for commands).")
    parser.add_argument("--config", required=True, type=Path, help="YAML file with DPORunConfig fields")
    return parser


if __name__ == "__main__":
    arguments = make_parser().parse_args()
    sys.exit(run_script(main, arguments.config, DPORunConfig))
