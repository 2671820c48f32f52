"""Training overhead benchmark: the same LoRA DPO run through Crossfeed and through a bare TRL script.

    .venv/bin/python bench/training_bench.py                     # 30 DPO steps, 4 repeats: ~4 minutes on 2 cores
    .venv/bin/python bench/training_bench.py --steps 60 --repeats 6 --threads 2

The claim under test: the platform adds no real cost over TRL. Both sides train the same model (the tiny Llama
architecture at hidden size 256 and 4 layers, so that a step takes measurable time) on the same file with the
same settings, on the same machine, in one benchmark run:

- Crossfeed: the path an admin's run takes. A campaign, items imported with the import service, judgments by two
  native annotators per language, a preference export (export_create + export_run), then
  `training_run_create(kind="dpo")` and `training_run_execute`, which writes run.yaml, launches
  training/scripts/dpo.py in its own process group and, while it trains, tails metrics.jsonl into the database
  every second. So Crossfeed's cost includes its callbacks (metrics.jsonl, the CANCEL check every step, the
  checkpoint metadata) and the watching worker competing for the same cores.
- Bare: the script in BARE_SCRIPT below, a minimal `DPOTrainer` with a PEFT `LoraConfig`: no callbacks, no
  Crossfeed import. It reads the *resolved* config of the Crossfeed run (preset + params: learning rate,
  scheduler, batch, LoRA, beta, max_length, seed, ...) and the export's own train.jsonl, so data and settings are
  identical by construction.

"Excluding process start" is measured from inside each process: the trainer's `train_runtime` (from
`Trainer.train()`; Crossfeed has it in the last "log" line of metrics.jsonl, the bare script prints it). The
end-to-end wall time of each (with interpreter start, imports, model loading and tokenization) is printed for
information. Runs alternate in ABBA order (bare, Crossfeed, Crossfeed, bare, ...); the ratio reported is the
median of the per-repeat ratios crossfeed / bare. Prints one JSON line.

Noise, measured on a 2-core machine shared with other test suites: with torch's default 2 threads per process the
two per-repeat ratios of one run were 2.20 and 0.81 (a step waits for the slower thread, and the other core was
often busy); hence one thread per training process by default (--threads), the same for both sides, and 4
repeats rather than 2, so that the median is not the mean of two outliers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIDDEN_SIZE = 256
NUM_LAYERS = 4
DATA_SEED = 42
# What the bench sets on top of the DPO paper preset (training/configs/dpo_paper.yaml), for both sides alike:
# 8 pairs x 1 micro-batch per step (the preset's 4 accumulation steps would make each step 4x longer for nothing
# measured); one checkpoint, at the last step, so both sides pay one save inside train_runtime; no gradient
# checkpointing (a 4-layer model needs no memory saving). Logging every 10 steps and warm-up stay as the preset has
# them: they change neither side's work per step.
BENCH_PARAMS: dict[str, Any] = {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                                "max_length": 256, "gradient_checkpointing": False,
                                "dpo": {"max_prompt_length": 128}}

BARE_SCRIPT = '''
"""Bare TRL DPO with LoRA: the config is Crossfeed's resolved one (a JSON file), the rest is plain TRL."""
import json
import sys

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

config = json.load(open(sys.argv[1], encoding="utf-8"))
output_dir = sys.argv[2]
cuda = torch.cuda.is_available()
bf16 = cuda and torch.cuda.is_bf16_supported()
fp16 = cuda and not bf16
tokenizer = AutoTokenizer.from_pretrained(config["model_name_or_path"])
model = AutoModelForCausalLM.from_pretrained(
    config["model_name_or_path"], dtype=torch.bfloat16 if bf16 else torch.float16 if fp16 else torch.float32)
pairs = load_dataset("json", data_files=config["train_file"], split="train")
pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
args = DPOConfig(
    output_dir=output_dir, beta=config["beta"], learning_rate=config["learning_rate"],
    lr_scheduler_type=config["lr_scheduler_type"], warmup_steps=config["warmup_steps"],
    weight_decay=config["weight_decay"], optim=config["optim"], max_steps=config["max_steps"],
    per_device_train_batch_size=config["per_device_train_batch_size"],
    gradient_accumulation_steps=config["gradient_accumulation_steps"], save_steps=config["save_steps"],
    logging_steps=config["logging_steps"], seed=config["seed"], max_length=config["max_length"],
    activation_checkpointing=config["gradient_checkpointing"], bf16=bf16, fp16=fp16, report_to="none",
    disable_tqdm=True,
)
peft_config = LoraConfig(r=config["lora_r"], lora_alpha=config["lora_alpha"], lora_dropout=config["lora_dropout"],
                         target_modules=config["lora_target_modules"], bias="none", task_type="CAUSAL_LM")
trainer = DPOTrainer(model=model, args=args, train_dataset=pairs, processing_class=tokenizer,
                     peft_config=peft_config)
result = trainer.train()
trainer.save_model(output_dir + "/adapter")
print(json.dumps({**result.metrics, "global_step": trainer.state.global_step}))
'''


def _django(var_dir: str) -> None:
    os.environ["CROSSFEED_VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    import django

    django.setup()


def prepare(var_dir: str, steps: int, repeats: int) -> dict[str, Any]:
    """Model, campaign, judgments, export, and one queued (not enqueued) run per repeat: all through services."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.services.campaigns import campaign_create
    from annotation.services.exports import export_create, export_run
    from annotation.services.imports import items_import
    from annotation.services.people import annotator_create
    from tests.conftest import jsonl
    from tests.training.synthetic_crosslingual import NAMES, judge_everything, synthetic_items
    from training.services.registry import base_model_register, platform_texts
    from training.services.runs import training_run_create
    from training.tiny_model import build_tiny_model

    call_command("migrate", verbosity=0)
    model_dir = build_tiny_model(Path(var_dir) / "model", platform_texts(), hidden_size=HIDDEN_SIZE,
                                 num_layers=NUM_LAYERS)
    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.invalid", "unused-password")
    campaign = campaign_create(name="training bench", created_by=admin, overlap=2)
    # 3 languages x 107 items = 321 pairs, each an on-target reply preferred to an off-target English one.
    items_import(campaign=campaign, source=io.BytesIO(jsonl(synthetic_items(random.Random(DATA_SEED),
                                                                           per_language=107))))
    annotators = {language: [annotator_create(username=f"{language}-{n}", password="unused-password",
                                              native_languages=[language], reading_languages=["en"])[0].user
                             for n in range(2)] for language in NAMES}
    judge_everything(campaign, annotators)
    export = export_run(export_id=export_create(campaign=campaign, created_by=admin, test_fraction=0.0,
                                                enqueue=False).id)
    assert export.status == "succeeded", export.error
    base_model = base_model_register(name="bench-llama", path=str(model_dir))
    params = {**BENCH_PARAMS, "max_steps": steps, "save_steps": steps}
    runs = [training_run_create(kind="dpo", base_model=base_model, export=export, params=params, created_by=admin,
                                enqueue=False) for _ in range(repeats)]
    config_path = Path(var_dir) / "resolved_dpo.json"
    config_path.write_text(json.dumps(runs[0].resolved["dpo"], indent=2), encoding="utf-8")
    return {"runs": [run.id for run in runs], "config": str(config_path), "rows": export.rows}


def run_crossfeed(run_id: int) -> dict[str, Any]:
    from training.services.execution import training_run_execute

    start = time.perf_counter()
    # poll_seconds=1.0: the worker's default, as the admin's queued task runs it.
    run = training_run_execute(run_id=run_id, poll_seconds=1.0)
    wall = time.perf_counter() - start
    assert run.status == "succeeded", run.error
    lines = (Path(run.output_dir) / "dpo" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    final = next(json.loads(line) for line in reversed(lines) if "train_runtime" in json.loads(line))
    return {"train_runtime": final["train_runtime"], "wall": wall, "steps": final["step"]}


def run_bare(var_dir: str, config: str, repeat: int) -> dict[str, Any]:
    script = Path(var_dir) / "bare_dpo.py"
    script.write_text(BARE_SCRIPT, encoding="utf-8")
    output_dir = Path(var_dir) / f"bare-{repeat}"
    # The same environment the Crossfeed worker gives its scripts (execution.py): offline, no tokenizer threads.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(script), config, str(output_dir)], capture_output=True, text=True,
                          env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    return {"train_runtime": metrics["train_runtime"], "wall": wall, "steps": metrics["global_step"]}


def _child(*arguments: str, var_dir: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--var-dir", var_dir, *arguments], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(steps: int, repeats: int, threads: int) -> dict[str, Any]:
    # Both sides inherit this: the bare script directly, Crossfeed's dpo.py through the worker (execution.py passes
    # its environment on). torch reads it at import for its intra-op thread pool.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="crossfeed-training-bench-") as var_dir:
        prepared = _child("--child", "prepare", "--steps", str(steps), "--repeats", str(repeats), var_dir=var_dir)
        bare, crossfeed = [], []
        for repeat, run_id in enumerate(prepared["runs"]):
            # ABBA order (bare, Crossfeed, Crossfeed, bare, ...): a load that grows or fades during the bench (other
            # work on the machine) weighs on both sides alike instead of always on the one that runs second.
            sides = ["bare", "crossfeed"] if repeat % 2 == 0 else ["crossfeed", "bare"]
            for side in sides:
                if side == "bare":
                    bare.append(run_bare(var_dir, prepared["config"], repeat))
                    assert bare[-1]["steps"] == steps, bare[-1]
                else:
                    crossfeed.append(_child("--child", "crossfeed", "--run", str(run_id), var_dir=var_dir))
                    assert crossfeed[-1]["steps"] == steps, crossfeed[-1]
    ratios = [c["train_runtime"] / b["train_runtime"] for b, c in zip(bare, crossfeed, strict=True)]
    return {
        "bench": "training_overhead", "steps": steps, "rows": prepared["rows"],
        "model": f"llama hidden {HIDDEN_SIZE} x {NUM_LAYERS} layers, LoRA DPO", "threads": threads,
        "bare_train_runtime_s": round(statistics.median(b["train_runtime"] for b in bare), 2),
        "crossfeed_train_runtime_s": round(statistics.median(c["train_runtime"] for c in crossfeed), 2),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(ratio, 3) for ratio in ratios],
        "bare_wall_s": round(statistics.median(b["wall"] for b in bare), 1),
        "crossfeed_wall_s": round(statistics.median(c["wall"] for c in crossfeed), 1),
        "target": "ratio <= 1.05",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="DPO optimizer steps per run (8 pairs each)")
    parser.add_argument("--repeats", type=int, default=4, help="bare/Crossfeed pairs of runs; the median is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training process")
    parser.add_argument("--child", choices=["prepare", "crossfeed"], help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _django(args.var_dir)
        if args.child == "prepare":
            print(json.dumps(prepare(args.var_dir, args.steps, args.repeats)))
        else:
            print(json.dumps(run_crossfeed(args.run)))
        return
    print(json.dumps(bench(args.steps, args.repeats, args.threads)), flush=True)


if __name__ == "__main__":
    main()
