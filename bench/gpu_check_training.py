"""Section a of bench/gpu_check.py: Crossfeed's training/scripts/sft.py and dpo.py against bench/bare_trl.py (plain
TRL) with the same settings, in the same run; see gpu_check.py's docstring. Django-free.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from gpu_check_models import REPO, Models, Sizes, corpus, model_info

RATIO_TARGET = 0.98
SECTION_A_NEEDS = ("trl", "datasets", "peft", "accelerate")


def training_rows(tokenizer, sizes: Sizes, count: int) -> tuple[list[dict], list[dict]]:
    """Chat rows longer than seq_len (each trains on exactly seq_len tokens), and preference pairs whose prompt,
    chosen and rejected answers are a quarter of seq_len each, cut from the corpus at different places."""
    ids = tokenizer(" ".join(corpus()), add_special_tokens=False, verbose=False)["input_ids"]
    ids = ids * (1 + 4 * sizes.seq_len // len(ids))

    def piece(index: int, length: int) -> str:
        start = (index * 7919) % (len(ids) - length)
        return tokenizer.decode(ids[start:start + length]).strip()

    quarter = max(4, sizes.seq_len // 4)
    chats = [{"messages": [{"role": "user", "content": piece(2 * i, quarter)},
                           {"role": "assistant", "content": piece(2 * i + 1, sizes.seq_len)}], "language": "sw"}
             for i in range(count)]
    pairs = [{"prompt": [{"role": "user", "content": piece(3 * i, quarter)}],
              "chosen": [{"role": "assistant", "content": piece(3 * i + 1, quarter)}],
              "rejected": [{"role": "assistant", "content": piece(3 * i + 2, quarter)}],
              "prompt_language": "sw", "response_language": "ta", "item": f"item-{i}", "chosen_model": "a",
              "rejected_model": "b", "votes_for": 3, "votes_against": 0, "n_judgments": 3, "split": "train"}
             for i in range(count)]
    return chats, pairs


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return str(path)


FITTED_MFU_TARGET = 0.40


def stage_settings(model: Path, sizes: Sizes, *, bf16: bool, liger: bool) -> dict:
    """The settings both sides train with, under RunConfig's names (training/scripts/config.py)."""
    return {"model_name_or_path": str(model), "max_steps": sizes.steps, "save_steps": sizes.steps,
            "logging_steps": 1, "per_device_train_batch_size": sizes.batch_size, "gradient_accumulation_steps": 1,
            "learning_rate": 1e-4, "lr_scheduler_type": "cosine", "warmup_steps": 0, "weight_decay": 0.0,
            "optim": "adamw_torch", "max_length": sizes.seq_len, "seed": 0, "bf16": bf16,
            "gradient_checkpointing": True, "use_liger_kernel": liger, "lora_r": 8, "lora_alpha": 16,
            "lora_dropout": 0.05, "lora_target_modules": ["q_proj", "v_proj"]}


def launch(side: str, stage: str, settings: dict, *, launcher: str, accelerate_config: str, timeout_s: int) -> dict:
    """Run one stage as its own process, as the worker does; the run's files, exit code and wall time."""
    import yaml

    out = Path(settings["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    if side == "crossfeed":
        config = out.parent / f"{out.name}.yaml"
        config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        script = [str(REPO / "training" / "scripts" / f"{stage}.py"), "--config", str(config)]
    else:
        config = out.parent / f"{out.name}.json"
        config.write_text(json.dumps(settings), encoding="utf-8")
        script = [str(REPO / "bench" / "bare_trl.py"), "--stage", stage, "--config", str(config)]
    prefix = [sys.executable]
    if launcher == "accelerate":
        prefix += ["-m", "accelerate.commands.launch", "--config_file",
                   str(REPO / "training" / "configs" / "accelerate" / f"{accelerate_config}.yaml"),
                   "--num_processes", "1"]
    # Each run its own datasets cache: the second side must not reuse the first side's tokenized rows.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_DATASETS_CACHE": str(out / "datasets-cache")}
    began = time.perf_counter()
    try:
        done = subprocess.run([*prefix, *script], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        code, log = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, log = "timeout", f"{expired.stdout or ''}{expired.stderr or ''}"
    result = {"exit_code": code, "wall_seconds": round(time.perf_counter() - began, 1),
              "adapter": (out / "adapter" / "adapter_config.json").is_file()}
    if code != 0:
        result["log_tail"] = str(log)[-3000:]
    return result


def read_metrics(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def steady_rate(metrics: list[dict], *, warmup: int, sequences_per_step: int) -> dict:
    """tokens/s from the log line of step `warmup` to the last: the trainer logs after every step (logging_steps 1),
    and logging reads the loss from the GPU, so each line is written once its step has finished there."""
    logs = [line for line in metrics if line.get("event") == "log" and "loss" in line]
    if len(logs) <= warmup or warmup < 1:
        return {"timed_steps": 0, "tokens_per_s": None}
    first, last = logs[warmup - 1], logs[-1]
    seconds = (datetime.fromisoformat(last["timestamp"]) - datetime.fromisoformat(first["timestamp"])).total_seconds()
    steps = last["step"] - first["step"]
    tokens = last.get("num_tokens", 0) - first.get("num_tokens", 0)
    return {"timed_steps": steps, "timed_seconds": round(seconds, 3),
            "tokens_per_step": round(tokens / steps, 1) if steps else None,
            "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and tokens > 0 else None,
            "mean_sequence_tokens": round(tokens / steps / sequences_per_step, 1) if steps else None,
            "first_loss": logs[0]["loss"], "last_loss": logs[-1]["loss"], "logged_steps": len(logs)}


def mfu(rate: dict, *, stage: str, info: dict, device: str) -> float | None:
    """As bench/gpu_training_bench.py counts it: LoRA work, 2F per token for SFT, 3F for DPO (reference forward)."""
    from gpu_training_bench import peak_flops

    peak = peak_flops(device)
    if not peak or not rate.get("tokens_per_s"):
        return None
    forward = 2 * info["matmul_parameters"] + 4 * info["layers"] * info["hidden_size"] * rate["mean_sequence_tokens"]
    return round(rate["tokens_per_s"] * (2 if stage == "sft" else 3) * forward / peak, 3)


def run_side(side: str, stage: str, settings: dict, *, args, sizes: Sizes, info: dict, device: str) -> dict:
    result = launch(side, stage, settings, launcher=args.launcher,
                    accelerate_config="cpu" if args.smoke else "single_gpu", timeout_s=sizes.timeout_s)
    out = Path(settings["output_dir"])
    rate = steady_rate(read_metrics(out), warmup=sizes.warmup,
                       sequences_per_step=sizes.batch_size * (1 if stage == "sft" else 2))
    result |= rate | {"mfu": mfu(rate, stage=stage, info=info, device=device)}
    if side == "crossfeed":
        manifest_path = out / "manifest.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
        config = manifest.get("config", {})
        result |= {"manifest_status": manifest.get("status"), "precision": manifest.get("precision"),
                   "liger_kernel": manifest.get("liger_kernel"),
                   # Settings the run resolved otherwise than the bare side got them (say, a batch sized to the card).
                   "settings_differ": sorted(key for key, value in settings.items()
                                             if key in config and key != "output_dir" and config[key] != value
                                             and not key.endswith(("_path", "_file")))}
    return result


# The fitted runs: the preset's shape (micro-batch x accumulation, the effective batch) with the micro-batch sized
# to the card by training/scripts/batching.py, as a real run does; Crossfeed's scripts only (bare TRL has no such
# step). Point 1's MFU targets are read here.
FITTED_ACCUMULATION = 4


def fitted_run(stage: str, base: dict, data: dict, root: Path, *, args, sizes: Sizes, info: dict,
               device: str) -> dict:
    steps = max(sizes.warmup + 3, sizes.steps // FITTED_ACCUMULATION)
    settings = {**base, "train_file": data[stage], "output_dir": str(root / f"fitted-{stage}"), "max_steps": steps,
                "gradient_accumulation_steps": FITTED_ACCUMULATION, "auto_micro_batch": True}
    if stage == "dpo":
        settings |= {"beta": 0.1, "adapter_path": str(root / "crossfeed-sft" / "adapter")}
    result = launch("crossfeed", stage, settings, launcher=args.launcher,
                    accelerate_config="cpu" if args.smoke else "single_gpu", timeout_s=sizes.timeout_s)
    out = Path(settings["output_dir"])
    effective = sizes.batch_size * FITTED_ACCUMULATION
    rate = steady_rate(read_metrics(out), warmup=min(sizes.warmup, steps - 1),
                       sequences_per_step=effective * (1 if stage == "sft" else 2))
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    plan = manifest.get("micro_batch") or {}
    return result | rate | {"mfu": mfu(rate, stage=stage, info=info, device=device), "effective_batch": effective,
                            "manifest_status": manifest.get("status"), "micro_batch": plan.get("micro_batch"),
                            "accumulation": plan.get("accumulation"), "probes": plan.get("probes"),
                            "mfu_target": FITTED_MFU_TARGET}


def compare(ours: dict, bare: dict, *, smoke: bool) -> dict:
    ratio = (round(ours["tokens_per_s"] / bare["tokens_per_s"], 3)
             if ours.get("tokens_per_s") and bare.get("tokens_per_s") else None)
    wall_ratio = round(ours["wall_seconds"] / bare["wall_seconds"], 3) if bare["wall_seconds"] else None
    return {"crossfeed": ours, "bare_trl": bare, "ratio": ratio, "target": RATIO_TARGET,
            "meets_target": None if smoke or ratio is None else ratio >= RATIO_TARGET,
            # Different counts mean the two sides did not train the same rows the same way (packing, a batch pick).
            "same_tokens_per_step": ours.get("tokens_per_step") == bare.get("tokens_per_step"),
            "wall_seconds_ratio": wall_ratio}


def missing_for_training() -> str | None:
    """Why section a cannot run here, or None: imports what the scripts import, in a fresh process."""
    code = "import " + ", ".join(SECTION_A_NEEDS)
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["(no message)"])[-1]
    return (f"section a needs {', '.join(SECTION_A_NEEDS)}; here `{code}` fails: {last}. Carry the missing ones "
            "as wheels (bench/gpu_check.sh installs .whl/*.whl; docs/benchmarks.md lists them)")


def section_a(args, sizes: Sizes, models: Models, device: str) -> dict:
    import torch
    from transformers import AutoTokenizer

    reason = missing_for_training()
    if reason:
        print(f"gpu_check: {reason}", file=sys.stderr, flush=True)
        return {"section": "a", "ok": False, "skipped": reason}
    model = models.get("train")
    info = model_info(model)
    root = Path(tempfile.mkdtemp(prefix="training-", dir=models.root))
    chats, pairs = training_rows(AutoTokenizer.from_pretrained(model), sizes, sizes.steps * sizes.batch_size)
    data = {"sft": write_jsonl(root / "chats.jsonl", chats), "dpo": write_jsonl(root / "pairs.jsonl", pairs)}
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    base = stage_settings(model, sizes, bf16=bf16, liger=args.liger)
    results: dict[str, dict] = {"sft": {}, "dpo": {}}
    # Alternate who goes first, so a card that warms up (clocks, caches) favours neither side.
    order = [("sft", "bare"), ("sft", "crossfeed"), ("dpo", "crossfeed"), ("dpo", "bare")]
    for stage, side in order:
        settings = {**base, "train_file": data[stage], "output_dir": str(root / f"{side}-{stage}")}
        if stage == "dpo":
            settings |= {"beta": 0.1, "adapter_path": str(root / f"{side}-sft" / "adapter")}
        results[stage][side] = run_side(side, stage, settings, args=args, sizes=sizes, info=info, device=device)
    fitted = {stage: fitted_run(stage, base, data, root, args=args, sizes=sizes, info=info, device=device)
              for stage in ("sft", "dpo")}
    line = {"section": "a", "model": info,
            "settings": {key: base[key] for key in ("per_device_train_batch_size", "max_length", "max_steps",
                                                    "bf16", "use_liger_kernel", "lora_r", "lora_target_modules",
                                                    "gradient_checkpointing")} | {
                "warmup_steps_untimed": sizes.warmup, "launcher": args.launcher, "dpo_on_sft_adapter": True}}
    for stage in ("sft", "dpo"):
        line[stage] = compare(results[stage]["crossfeed"], results[stage]["bare"], smoke=args.smoke)
    line["fitted"] = fitted
    runs = [run for stage in results.values() for run in stage.values()] + list(fitted.values())
    line["ok"] = all(run["exit_code"] == 0 and run["adapter"] and run.get("tokens_per_s") for run in runs) and all(
        results[stage]["crossfeed"]["manifest_status"] == "succeeded" for stage in results)
    return line

