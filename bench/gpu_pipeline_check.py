"""Crossfeed's own training path on a CUDA GPU: training/scripts/sft.py, then dpo.py on top of its adapter, each
through `accelerate launch` with training/configs/accelerate/single_gpu.yaml, the way the worker starts them.

    python bench/gpu_pipeline_check.py            # on a GPU host; under a minute
    python bench/gpu_pipeline_check.py --smoke    # the same code path on a CPU (cpu.yaml, 4 steps), no figures

It builds the tiny local model (training/tiny_model.py), writes a small SFT and a small preference file in the
export's shape, runs both stages with `bf16: auto` and `use_liger_kernel: auto`, and checks what the worker relies
on: exit code 0, metrics.jsonl with the loss (and DPO rewards), an adapter, and manifest.json written last with
the resolved precision. Prints one JSON line per stage. Django-free: it needs only what training/scripts needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TEXTS = ["Habari ya asubuhi, rafiki yangu.", "வணக்கம், எப்படி இருக்கிறீர்கள்?", "مرحبا، كيف حالك اليوم؟",
         "你好，今天天气很好。", "Bonjour, comment allez-vous ?", "नमस्ते, आप कैसे हैं?",
         "ሰላም፣ እንዴት ነህ?", "Привет, как дела?"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def launch(stage: str, config: dict, folder: Path, accelerate_config: str) -> dict:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{stage}.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "training" / "configs" / "accelerate" / f"{accelerate_config}.yaml"), "--num_processes", "1",
               str(REPO / "training" / "scripts" / f"{stage}.py"), "--config", str(config_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    seconds = time.perf_counter() - start
    out = Path(config["output_dir"])
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    metrics_path = out / "metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.is_file() else []
    losses = [row["loss"] for row in metrics if "loss" in row]
    report = {"bench": "gpu_pipeline", "stage": stage, "exit_code": result.returncode, "seconds": round(seconds, 1),
              "manifest_status": manifest.get("status"), "adapter": (out / "adapter").is_dir(),
              "precision": manifest.get("precision"), "liger_kernel": manifest.get("liger_kernel"),
              "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
              "logged_steps": len(losses)}
    if stage == "dpo":
        accuracies = [row["rewards/accuracies"] for row in metrics if "rewards/accuracies" in row]
        report["last_reward_accuracy"] = accuracies[-1] if accuracies else None
    if result.returncode != 0:
        report["log_tail"] = (result.stdout + result.stderr)[-3000:]
    return report


def main() -> int:
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="run on the CPU with cpu.yaml and 4 steps")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        raise SystemExit("gpu_pipeline_check needs a CUDA GPU; none is visible here")
    from training.tiny_model import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="crossfeed-gpu-"))
    model = build_tiny_model(root / "model", TEXTS * 5, seed=0)
    n = len(TEXTS)
    chats = [{"messages": [{"role": "user", "content": TEXTS[i % n]},
                           {"role": "assistant", "content": TEXTS[(i + 1) % n]}], "language": "sw"}
             for i in range(32)]
    pairs = [{"prompt": [{"role": "user", "content": TEXTS[i % n]}],
              "chosen": [{"role": "assistant", "content": TEXTS[(i + 1) % n]}],
              "rejected": [{"role": "assistant", "content": TEXTS[(i + 3) % n]}],
              "prompt_language": "sw", "response_language": "ta", "item": f"item-{i}", "chosen_model": "a",
              "rejected_model": "b", "votes_for": 3, "votes_against": 0, "n_judgments": 3, "split": "train"}
             for i in range(32)]
    sft_file = write_jsonl(root / "sft.jsonl", chats)
    dpo_file = write_jsonl(root / "pairs.jsonl", pairs)
    common = {"model_name_or_path": str(model), "max_steps": 4 if args.smoke else 30,
              "save_steps": 2 if args.smoke else 15, "logging_steps": 1 if args.smoke else 5,
              "per_device_train_batch_size": 8, "learning_rate": 1e-3, "max_length": 128, "seed": 0,
              "bf16": "auto", "use_liger_kernel": "auto", "gradient_checkpointing": True}
    sft_out = root / "sft"
    accelerate = "cpu" if args.smoke else "single_gpu"
    sft_config = {**common, "output_dir": str(sft_out), "train_file": str(sft_file)}
    reports = [launch("sft", sft_config, root / "cfg", accelerate)]
    reports.append(launch("dpo", {**common, "output_dir": str(root / "dpo"), "train_file": str(dpo_file),
                                  "adapter_path": str(sft_out / "adapter")}, root / "cfg", accelerate))
    for report in reports:
        report["device"] = "cpu (smoke run)" if args.smoke else torch.cuda.get_device_name()
        print(json.dumps(report, ensure_ascii=False), flush=True)
    return 0 if all(r["exit_code"] == 0 and r["manifest_status"] == "succeeded" for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
