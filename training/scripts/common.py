"""What sft.py and dpo.py share: the run config, data and model loading, the metrics callback, the manifest.

The contract with whoever launches a run (the Django worker, or a person at a shell) is files in `output_dir`:

    metrics.jsonl           one JSON object per line: train_begin, log (loss, learning_rate, rewards/...), save,
                            cancelled, train_end; appended while training, by the main process only
    checkpoint-<step>/      Trainer checkpoints, each with run_config.yaml and run_provenance.json beside it
    adapter/                the final LoRA adapter + tokenizer + run_config.yaml + run_provenance.json
    manifest.json           written last and atomically: its presence means the adapter is complete
    CANCEL                  created by the launcher: training stops at the next step, checkpoints, exits 3
    trainer.lock            flock-ed by the trainer for as long as it lives: one trainer per folder

Exit codes: 0 finished (manifest written), 2 invalid config (message on stderr names the field or file),
3 cancelled (no manifest; resume later with `resume_from_checkpoint: auto`), 4 another trainer holds output_dir
(nothing was written), anything else: a crash.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# Models and data come from local paths only. Offline mode makes an accidental hub lookup (a typo in a path, a
# tokenizer that wants a remote template) fail at once instead of hanging on network timeouts on a GPU host.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import yaml  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from training.scripts.chat_templates import ChatTemplate, use_chat_template  # noqa: E402
from training.scripts.config import (  # noqa: E402, F401 - re-exported for sft.py and dpo.py
    ADAPTER_DIR,
    CANCEL_FILE,
    DATA_SUFFIXES,
    EXIT_CANCELLED,
    EXIT_CONFIG_ERROR,
    MANIFEST_FILE,
    METRICS_FILE,
    PROVENANCE_FILE,
    RUN_CONFIG_FILE,
    SAME_NAME_TRAINER_FIELDS,
    ConfigError,
    DPORunConfig,
    RunConfig,
    SFTRunConfig,
    _check,
    config_from_dict,
    load_config,
    run_script,
)

EXIT_FOLDER_IN_USE = 4
LOCK_FILE = "trainer.lock"

# --- one trainer per output folder ----------------------------------------------------------------------------


class FolderInUse(Exception):
    """Another live trainer holds the output folder's lock; the message names it."""


class OutputDirLock:
    """An exclusive flock on <output_dir>/trainer.lock, held until release() or the end of the process.

    Two trainers on one folder would append to one metrics.jsonl and overwrite each other's checkpoints, adapter and
    manifest. The kernel drops an flock when its holder dies however it dies (SIGKILL included), so a lock left by
    a dead trainer never blocks the next one. The holder's pid, host and start time are written into the file for
    the message the next trainer prints.
    """

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.path.read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise FolderInUse(f"output_dir: {self.path.parent} is in use by another trainer ({holder}); a second "
                              "one would overwrite its checkpoints and manifest. Wait for it to end, or stop it "
                              "(Cancel in Crossfeed), then start this one again") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"pid {os.getpid()} on {socket.gethostname()} since {_now()}\n".encode())

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor of the lock releases it
            self.fd = None


_held_locks: list[OutputDirLock] = []


def hold_output_dir(config: RunConfig) -> None:
    """Make this process the only trainer of config.output_dir, or exit at once with EXIT_FOLDER_IN_USE.

    Called first thing in main(), before any data or model is read: a second trainer must not load a 7B model onto
    a GPU that the first one is using. Under `accelerate launch` only the global main process takes the lock (the
    other ranks of the same launch share the folder by design); when it exits, the launcher stops the other ranks.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if any(lock.path == Path(config.output_dir) / LOCK_FILE for lock in _held_locks):
        return  # main() called again in this process (a notebook): this process is the trainer already
    try:
        _held_locks.append(OutputDirLock(config.output_dir))
    except FolderInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_FOLDER_IN_USE) from None


# --- hardware-dependent choices -------------------------------------------------------------------------------


def precision_flags(config: RunConfig) -> dict[str, bool]:
    """bf16 where the GPU has it; fp16 on older CUDA GPUs; fp32 on CPU (CPU bf16 autocast is slow and lossy)."""
    import torch

    cuda = torch.cuda.is_available()
    if config.bf16 == "auto":
        bf16 = cuda and torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": cuda and not bf16}
    return {"bf16": bool(config.bf16), "fp16": False}


def use_liger(config: RunConfig) -> bool:
    import torch

    if config.use_liger_kernel == "auto":
        return importlib.util.find_spec("liger_kernel") is not None and torch.cuda.is_available()
    return bool(config.use_liger_kernel)


def resolve_resume_checkpoint(config: RunConfig) -> str | None:
    """'auto' means the newest complete checkpoint-<step> in output_dir, or a fresh start when there is none yet.

    Complete: CheckpointMetadataCallback wrote run_config.yaml into it, which happens in on_save, after the Trainer
    has written the weights, optimizer, scheduler and trainer_state.json. A trainer stopped in the middle of a save
    (SIGTERM from a cancel's grace period, SIGKILL, the OOM killer) leaves a checkpoint folder without it, and
    resuming from that one fails on its missing trainer_state.json (transformers' get_last_checkpoint takes it).
    """
    if config.resume_from_checkpoint != "auto":
        return config.resume_from_checkpoint
    folder = Path(config.output_dir)
    if not folder.is_dir():
        return None
    steps = []
    for checkpoint in folder.glob("checkpoint-*"):
        step = checkpoint.name.removeprefix("checkpoint-")
        if step.isdigit() and (checkpoint / RUN_CONFIG_FILE).is_file():
            steps.append((int(step), checkpoint))
    return str(max(steps)[1]) if steps else None


def trainer_arguments(config: RunConfig) -> dict[str, Any]:
    """Keyword arguments common to TRL's SFTConfig and DPOConfig (both subclass TrainingArguments)."""
    import torch

    evaluate = config.eval_file is not None
    return {
        **{name: getattr(config, name) for name in SAME_NAME_TRAINER_FIELDS},
        "save_strategy": "steps",
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": (config.eval_steps or config.save_steps) if evaluate else None,
        # transformers 5.24 renamed gradient_checkpointing (a deprecated alias now, defaulted to True by TRL).
        "activation_checkpointing": config.gradient_checkpointing,
        "use_liger_kernel": use_liger(config),
        # metrics.jsonl is our tracker; no wandb/tensorboard surprises on a GPU host.
        "report_to": "none",
        "disable_tqdm": True,
        # Without a GPU, `accelerate launch` (torchrun) processes only join one gloo group when use_cpu is set;
        # otherwise each would train alone on the whole data set.
        "use_cpu": not torch.cuda.is_available(),
        **precision_flags(config),
    }


# --- model, tokenizer, data -----------------------------------------------------------------------------------


def load_tokenizer(config: RunConfig) -> tuple[Any, ChatTemplate]:
    """The tokenizer with the base model's chat template set on it (chat_templates.py: the same rule evaluation
    applies), and that template, for the manifest. A base model without a template of its own trains with the
    seed's "Question: … Answer:" format; the adapter's saved tokenizer carries whichever template was used."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model_name_or_path)
    template = use_chat_template(tokenizer, name=config.chat_template_name, override=config.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, template


def load_base_model(config: RunConfig):
    """The base model on this process's device, in the compute dtype; NF4-quantized when load_in_4bit."""
    import torch
    from accelerate import PartialState
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    flags = precision_flags(config)
    dtype = torch.bfloat16 if flags["bf16"] else torch.float16 if flags["fp16"] else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    if config.load_in_4bit:
        # The paper's QLoRA setting: NF4 weights, bf16 compute. Each process holds its own copy on its own GPU.
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": PartialState().local_process_index}
    return AutoModelForCausalLM.from_pretrained(config.model_name_or_path, **kwargs)


def lora_config(config: RunConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_target_modules), bias="none", task_type="CAUSAL_LM")


def load_rows(path: str, *, field_name: str, columns: list[str]):
    """Read a JSONL/Parquet file as a datasets.Dataset holding only `columns` (metadata columns are dropped)."""
    from datasets import load_dataset

    builder = "parquet" if path.endswith(".parquet") else "json"
    dataset = load_dataset(builder, data_files={"rows": path}, split="rows")
    missing = [name for name in columns if name not in dataset.column_names]
    _check(not missing, f"{field_name}: {path} lacks column(s) {', '.join(missing)}; "
           f"found {', '.join(dataset.column_names)}")
    _check(len(dataset) > 0, f"{field_name}: {path} has no rows")
    return dataset


# --- provenance -----------------------------------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_hashes(config: RunConfig) -> dict[str, dict[str, str]]:
    files = {"train_file": config.train_file, "eval_file": config.eval_file}
    return {name: {"path": path, "sha256": sha256_file(path)} for name, path in files.items() if path}


def code_version() -> str:
    """The git commit of the repository holding this script, or "unknown" (e.g. an installed copy)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def library_versions() -> dict[str, str]:
    names = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "bitsandbytes",
             "liger-kernel", "deepspeed")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, then rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def save_run_metadata(folder: str | Path, *, config: RunConfig, hashes: dict[str, dict[str, str]]) -> None:
    """Put the resolved config (loadable again with load_config) and the data hashes beside an adapter."""
    folder = Path(folder)
    _atomic_write_text(folder / RUN_CONFIG_FILE, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False,
                                                                allow_unicode=True))
    provenance = {"datasets": hashes, "code_version": code_version(), "libraries": library_versions()}
    _atomic_write_text(folder / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")


def write_manifest(output_dir: str | Path, *, kind: str, config: RunConfig, adapter_dir: str | Path,
                   hashes: dict[str, dict[str, str]], metrics: dict[str, Any], extra: dict[str, Any] | None = None
                   ) -> Path:
    """Write manifest.json last: its existence tells the launcher that the adapter is complete and registrable."""
    manifest = {
        "kind": kind,
        "status": "succeeded",
        "adapter_path": str(Path(adapter_dir).resolve()),
        "base_model": config.model_name_or_path,
        "config": dataclasses.asdict(config),
        "datasets": hashes,
        "code_version": code_version(),
        "libraries": library_versions(),
        "metrics": _json_safe(metrics),
        "finished_at": _now(),
        **(extra or {}),
    }
    path = Path(output_dir) / MANIFEST_FILE
    _atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON; a diverged loss is reported as null rather than breaking the reader."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# --- callbacks ------------------------------------------------------------------------------------------------


class MetricsCallback(TrainerCallback):
    """Appends one JSON line per event to <output_dir>/metrics.jsonl and stops training when <output_dir>/CANCEL
    appears. Only the world main process writes; every process checks CANCEL and they agree through an all-reduce,
    so no rank leaves the collective step loop alone (which would hang the others)."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.cancelled = False

    def _append(self, state: Any, event: str, **values: Any) -> None:
        if not state.is_world_process_zero:
            return
        line = {"event": event, "step": state.global_step, "max_steps": state.max_steps,
                "epoch": state.epoch, "timestamp": _now(), **values}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(_json_safe(line), ensure_ascii=False) + "\n")

    def on_train_begin(self, args, state, control, **kwargs):
        self._append(state, "train_begin", num_train_epochs=state.num_train_epochs, world_size=args.world_size,
                     total_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps
                     * args.world_size)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._append(state, "log", **(logs or {}))

    def on_save(self, args, state, control, **kwargs):
        self._append(state, "save", checkpoint=f"checkpoint-{state.global_step}")

    def on_step_end(self, args, state, control, **kwargs):
        if self._cancel_requested(args):
            self.cancelled = True
            control.should_training_stop = True
            # Checkpoint where we stop, so `resume_from_checkpoint: auto` loses no finished step.
            control.should_save = True
            self._append(state, "cancelled")
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self._append(state, "train_end", cancelled=self.cancelled)

    def _cancel_requested(self, args: Any) -> bool:
        import torch
        import torch.distributed as dist

        requested = (self.output_dir / CANCEL_FILE).exists()
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([int(requested)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested


class CheckpointMetadataCallback(TrainerCallback):
    """Every checkpoint-<step>/ gets run_config.yaml and run_provenance.json, so any of them can be traced."""

    def __init__(self, config: RunConfig, hashes: dict[str, dict[str, str]]) -> None:
        self.config = config
        self.hashes = hashes

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            save_run_metadata(checkpoint, config=self.config, hashes=self.hashes)


def end_trainer(trainer: Any) -> None:
    """transformers >= 5.18: close trackers and destroy the process group, so accelerate exits cleanly."""
    if hasattr(trainer, "end"):
        trainer.end()


def finish_run(trainer: Any, *, kind: str, config: RunConfig, hashes: dict[str, dict[str, str]],
               train_metrics: dict[str, Any], extra: dict[str, Any]) -> Path:
    """Save the adapter, its metadata, then the manifest (last). Every process must call it (ZeRO-3 gathers)."""
    adapter_dir = Path(config.output_dir) / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))
    metrics = {"train": train_metrics}
    if trainer.eval_dataset is not None:
        metrics["eval"] = trainer.evaluate()
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        last_log: dict[str, Any] = next(
            (entry for entry in reversed(trainer.state.log_history) if "loss" in entry), {}
        )
        metrics["last_log"] = last_log
        save_run_metadata(adapter_dir, config=config, hashes=hashes)
        extra = {**extra, "global_step": trainer.state.global_step, "world_size": trainer.args.world_size,
                 "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
                 "liger_kernel": bool(getattr(trainer.args, "use_liger_kernel", False))}
        write_manifest(config.output_dir, kind=kind, config=config, adapter_dir=adapter_dir, hashes=hashes,
                       metrics=metrics, extra=extra)
    return adapter_dir


def fit_micro_batch(trainer: Any, *, kind: str, config: RunConfig) -> dict[str, Any]:
    """Size the micro-batch to the GPU (batching.py), say what was chosen, and return it for the manifest."""
    from training.scripts.batching import fit

    plan = fit(trainer, kind=kind, setting=config.auto_micro_batch, memory_fraction=config.micro_batch_memory_fraction,
               max_length=config.max_length)
    trainer.accelerator.print(
        f"Micro-batch {plan.micro_batch} x accumulation {plan.accumulation} (preset {plan.preset_micro_batch} x "
        f"{plan.preset_accumulation}): {plan.reason}.")
    return plan.record()


def train_and_finish(trainer: Any, metrics_callback: MetricsCallback, *, kind: str, config: RunConfig,
                     hashes: dict[str, dict[str, str]], extra: dict[str, Any]) -> int:
    """Train (resuming when asked), then either stop at a cancel (checkpoint only) or save adapter + manifest.

    Returns the script's exit code: 0 finished, EXIT_CANCELLED when the launcher asked it to stop.
    """
    resume = resolve_resume_checkpoint(config)
    result = trainer.train(resume_from_checkpoint=resume)
    if metrics_callback.cancelled:
        trainer.accelerator.print("Cancelled: checkpoint written, no adapter or manifest.")
        end_trainer(trainer)
        return EXIT_CANCELLED
    finish_run(trainer, kind=kind, config=config, hashes=hashes, train_metrics=result.metrics,
               extra={"resumed_from": resume, **extra})
    trainer.accelerator.print(f"Adapter saved to {config.output_dir}/adapter; manifest written.")
    end_trainer(trainer)
    return 0

