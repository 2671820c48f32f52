"""The run configs of sft.py and dpo.py: dataclasses, YAML loading, validation. Imports no torch at module level,
so the Django side can validate a run's parameters before queueing it (`check_environment=False` skips the checks
that only mean something on the GPU host: bf16/QLoRA/Liger availability).

The files a run writes and its exit codes are described in common.py.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

EXIT_CONFIG_ERROR = 2
EXIT_CANCELLED = 3
METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "manifest.json"
CANCEL_FILE = "CANCEL"
ADAPTER_DIR = "adapter"
RUN_CONFIG_FILE = "run_config.yaml"
PROVENANCE_FILE = "run_provenance.json"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
# RunConfig fields passed unchanged to TRL's SFTConfig/DPOConfig, whose names they share.
# transformers.SchedulerType values (5.24), listed here so that validation needs no transformers import.
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
              "warmup_stable_decay", "greedy")
SAME_NAME_TRAINER_FIELDS = (
    "output_dir", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "max_steps",
    "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
    "save_steps", "save_total_limit", "logging_steps", "seed", "max_length",
)


class ConfigError(ValueError):
    """A run config a person must fix; the message names the field or file and says what is expected."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _local_file(name: str, value: str) -> str:
    path = Path(value).expanduser().resolve()
    _check(path.is_file(), f"{name}: file not found: {value}")
    _check(path.suffix in DATA_SUFFIXES, f"{name}: {value} must end in one of {', '.join(DATA_SUFFIXES)}")
    return str(path)


@dataclass
class RunConfig:
    """Fields shared by SFT and DPO. Names follow PEFT (lora_*) and TRL's SFTConfig/DPOConfig, so they read alike."""

    model_name_or_path: str = field(metadata={"help": "Local folder of the base model (config.json + weights)."})
    output_dir: str = field(metadata={"help": "Folder for checkpoints, metrics.jsonl, adapter/ and manifest.json."})
    train_file: str = field(metadata={"help": "Training rows, JSONL or Parquet."})
    eval_file: str | None = field(default=None, metadata={"help": "Optional evaluation rows, JSONL or Parquet."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (PEFT `r`)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator: updates are scaled by alpha/r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "v_proj"], metadata={"help": "Module names that get LoRA adapters."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name."})
    warmup_steps: int | float = field(default=0, metadata={"help": "Warm-up steps (int) or ratio (float < 1)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    optim: str = field(default="adamw_torch", metadata={"help": "transformers optimizer name."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps to run; -1 means use num_train_epochs."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs, when max_steps is -1."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Rows per device per micro-batch."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Rows per device per eval batch."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    save_steps: int = field(default=500, metadata={"help": "Write checkpoint-<step>/ every this many steps."})
    save_total_limit: int | None = field(default=None, metadata={"help": "Keep only the newest N checkpoints."})
    logging_steps: int = field(default=10, metadata={"help": "Append a metrics line every this many steps."})
    eval_steps: int | None = field(default=None, metadata={"help": "Evaluate every N steps (default: save_steps)."})
    seed: int = field(default=42, metadata={"help": "Seed for LoRA init, data order and dropout."})
    max_length: int = field(default=1024, metadata={"help": "Longest tokenized sequence; longer ones are cut."})
    bf16: bool | str = field(default="auto", metadata={"help": "true, false, or auto (on when the GPU has bf16)."})
    gradient_checkpointing: bool = field(default=True, metadata={"help": "Recompute activations to save memory."})
    use_liger_kernel: bool | str = field(default=False, metadata={"help": "true, false, or auto (installed + CUDA)."})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA (NF4 base); needs bitsandbytes + CUDA."})
    attn_implementation: str | None = field(default=None, metadata={"help": "eager, sdpa, flash_attention_2."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint, or auto (newest)."})

    def __post_init__(self) -> None:
        self._check_paths()
        self._check_lora()
        self._check_trainer()
        if _CHECK_ENVIRONMENT[0]:
            self._check_hardware()

    def _check_paths(self) -> None:
        model_dir = Path(self.model_name_or_path).expanduser()
        _check(
            (model_dir / "config.json").is_file(),
            f"model_name_or_path: {self.model_name_or_path} is not a local model folder (no config.json); "
            "models are never downloaded here, give the path of a saved model",
        )
        self.model_name_or_path = str(model_dir.resolve())
        _check(bool(self.output_dir), "output_dir: must not be empty")
        self.output_dir = str(Path(self.output_dir).expanduser().resolve())
        self.train_file = _local_file("train_file", self.train_file)
        if self.eval_file:
            self.eval_file = _local_file("eval_file", self.eval_file)
        if self.resume_from_checkpoint not in (None, "auto"):
            checkpoint = Path(self.resume_from_checkpoint).expanduser().resolve()
            _check(checkpoint.is_dir(), f"resume_from_checkpoint: folder not found: {self.resume_from_checkpoint}")
            self.resume_from_checkpoint = str(checkpoint)

    def _check_lora(self) -> None:
        _check(self.lora_r > 0, f"lora_r: must be a positive integer, got {self.lora_r}")
        _check(self.lora_alpha > 0, f"lora_alpha: must be positive, got {self.lora_alpha}")
        _check(0 <= self.lora_dropout < 1, f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        _check(
            bool(self.lora_target_modules) and all(isinstance(name, str) for name in self.lora_target_modules),
            "lora_target_modules: give a non-empty list of module names, e.g. [q_proj, v_proj]",
        )
        # TRL refuses a LoRA adapter on the output layer only once the trainer starts; say so before queueing.
        _check("lm_head" not in self.lora_target_modules,
               "lora_target_modules: lm_head cannot carry a LoRA adapter in TRL; target attention or MLP projections")

    def _check_trainer(self) -> None:
        _check(self.learning_rate > 0, f"learning_rate: must be positive, got {self.learning_rate}")
        schedulers = SCHEDULERS
        _check(self.lr_scheduler_type in schedulers, f"lr_scheduler_type: unknown {self.lr_scheduler_type!r}; "
               f"choose one of {', '.join(schedulers)}")
        _check(self.warmup_steps >= 0, f"warmup_steps: must be >= 0, got {self.warmup_steps}")
        _check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")
        _check(self.max_steps == -1 or self.max_steps > 0, f"max_steps: must be -1 or positive, got {self.max_steps}")
        _check(self.num_train_epochs > 0, f"num_train_epochs: must be positive, got {self.num_train_epochs}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                     "save_steps", "logging_steps", "max_length"):
            _check(getattr(self, name) >= 1, f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("eval_steps", "save_total_limit"):
            _check(getattr(self, name) is None or getattr(self, name) >= 1,
                   f"{name}: must be at least 1, got {getattr(self, name)}")

    def _check_hardware(self) -> None:
        import torch

        _check(self.bf16 in (True, False, "auto"), f"bf16: must be true, false or auto, got {self.bf16!r}")
        _check(self.use_liger_kernel in (True, False, "auto"),
               f"use_liger_kernel: must be true, false or auto, got {self.use_liger_kernel!r}")
        if self.use_liger_kernel is True:
            _check(importlib.util.find_spec("liger_kernel") is not None,
                   "use_liger_kernel: the liger_kernel package is not installed; install it or set false/auto")
        if self.load_in_4bit:
            needs = {"the bitsandbytes package": importlib.util.find_spec("bitsandbytes") is not None,
                     "a CUDA GPU": torch.cuda.is_available()}
            lacking = [name for name, present in needs.items() if not present]
            _check(not lacking, f"load_in_4bit: QLoRA needs bitsandbytes and a CUDA GPU; this machine lacks "
                   f"{' and '.join(lacking)}. Set load_in_4bit: false to train LoRA on full-precision weights")


@dataclass
class SFTRunConfig(RunConfig):
    """Supervised fine-tuning on conversational rows: {"messages": [{"role": ..., "content": ...}, ...]}."""

    packing: bool = field(default=False, metadata={"help": "Pack several conversations into max_length blocks."})
    assistant_only_loss: bool = field(default=False, metadata={"help": "Loss on assistant turns (+ their EOS) only."})


@dataclass
class DPORunConfig(RunConfig):
    """DPO on TRL conversational preference rows: prompt, chosen, rejected (other columns are dropped)."""

    beta: float = field(default=0.1, metadata={"help": "DPO temperature: higher keeps closer to the reference."})
    # TRL 1.16's DPOConfig dropped max_prompt_length; dpo.py applies it to the tokenized prompts itself.
    max_prompt_length: int | None = field(default=None, metadata={"help": "Keep the last N prompt tokens."})
    adapter_path: str | None = field(default=None, metadata={"help": "SFT adapter merged in before DPO."})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.beta > 0, f"beta: must be positive, got {self.beta}")
        if self.max_prompt_length is not None:
            _check(0 < self.max_prompt_length < self.max_length,
                   f"max_prompt_length: must be between 1 and max_length - 1 ({self.max_length - 1}), "
                   f"got {self.max_prompt_length}")
        if self.adapter_path:
            adapter = Path(self.adapter_path).expanduser().resolve()
            _check((adapter / "adapter_config.json").is_file(),
                   f"adapter_path: {self.adapter_path} has no adapter_config.json (expected a saved PEFT adapter)")
            _check(not self.load_in_4bit, "load_in_4bit: cannot merge adapter_path into a 4-bit base; merge and "
                   "save the SFT model in 16-bit first, then point model_name_or_path at it")
            self.adapter_path = str(adapter)


ConfigT = TypeVar("ConfigT", bound=RunConfig)
# Set by config_from_dict for the duration of one construction (dataclass __post_init__ takes no arguments).
_CHECK_ENVIRONMENT = [True]


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML value to the field's type, or raise ConfigError naming the field."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        arms = get_args(annotation)
        if value is None and type(None) in arms:
            return None
        for arm in (arm for arm in arms if arm is not type(None)):
            try:
                return _coerce(name, value, arm)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {annotation}, got {value!r}")
    if origin is list:
        _check(isinstance(value, list), f"{name}: expected a list, got {value!r}")
        return [_coerce(name, item, get_args(annotation)[0]) for item in value]
    if annotation in (bool, int, str):
        wanted = {bool: "true or false", int: "an integer", str: "text"}[annotation]
        # bool is a subclass of int in Python, but `lora_r: true` is a mistake, not 1.
        valid = isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
        _check(valid, f"{name}: expected {wanted}, got {value!r}")
        return value
    if annotation is float:
        # PyYAML follows YAML 1.1, which reads `1e-4` (no dot) as a string: accept any number-like text.
        _check(not isinstance(value, bool), f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    raise ConfigError(f"{name}: unsupported field type {annotation}")


def config_from_dict(values: dict[str, Any], config_cls: type[ConfigT], *, check_environment: bool = True) -> ConfigT:
    """Build and validate a config from plain values (a parsed YAML mapping, or a dict from the launcher).

    check_environment=False skips the hardware checks (GPU, bitsandbytes, liger): for validating on a web host a
    run that will execute on a GPU host."""
    hints = get_type_hints(config_cls)
    known = {item.name for item in dataclasses.fields(config_cls)}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}: unknown field for {config_cls.__name__}{hint}")
    required = [item.name for item in dataclasses.fields(config_cls)
                if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING]
    missing = [name for name in required if values.get(name) in (None, "")]
    _check(not missing, f"{', '.join(missing)}: required field(s) missing")
    coerced = {key: _coerce(key, value, hints[key]) for key, value in values.items()}
    _CHECK_ENVIRONMENT[0] = check_environment
    try:
        return config_cls(**coerced)
    finally:
        _CHECK_ENVIRONMENT[0] = True


def load_config(path: str | Path, config_cls: type[ConfigT]) -> ConfigT:
    """Read a YAML run config; unknown, missing or invalid fields raise ConfigError."""
    path = Path(path)
    _check(path.is_file(), f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    _check(isinstance(values, dict), "expected a mapping of field: value at the top level")
    return config_from_dict(values, config_cls)


def run_script(main: Any, config_path: str | Path, config_cls: type[RunConfig]) -> int:
    """Load the config and call main(config); an invalid config prints one line naming the field, exit code 2."""
    try:
        config = load_config(config_path, config_cls)
        return int(main(config) or 0)
    except ConfigError as exc:  # also raised by main for data problems (a missing column, an empty file)
        print(f"error: {config_path}: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


