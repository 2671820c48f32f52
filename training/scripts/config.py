"""The run configs of sft.py and dpo.py: dataclasses, YAML loading, validation. Imports no torch at module level,
so the Django side can validate a run's parameters before queueing it (`check_environment=False` skips the checks
that only mean something on the GPU host: bf16/QLoRA/Liger availability).

The files a run writes and its exit codes are described in common.py.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import importlib.util
import json
import math
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from training.scripts.chat_templates import TEMPLATE_NAMES

EXIT_CONFIG_ERROR = 2
EXIT_CANCELLED = 3
METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "manifest.json"
CANCEL_FILE = "CANCEL"
ADAPTER_DIR = "adapter"
RUN_CONFIG_FILE = "run_config.yaml"
PROVENANCE_FILE = "run_provenance.json"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")

# The ranges of the numeric fields (docs/training.md lists them). A value outside is a mistake caught before a GPU
# hour is spent on it, or before it overflows a database column: the worker stores step counts in PositiveInteger
# columns, 32-bit signed on PostgreSQL, so no step count (max_steps, save_steps, ...) may pass 2**31 - 1.
INT32_MAX = 2**31 - 1
MAX_LORA_R = 65_536  # when the model's config.json gives no hidden_size, which bounds the rank below this
MAX_LORA_ALPHA = 65_536
MAX_LORA_TARGETS = 64
MAX_LEARNING_RATE = 10.0  # 1.0 is already the norm for Prodigy/D-Adaptation; schedule-free SGD goes a little higher
MAX_WEIGHT_DECAY = 10.0  # Lion wants about ten times AdamW's 0.1; beyond 10 the decay step outweighs the weights
MAX_EPOCHS = 10_000.0
MAX_BATCH_SIZE = 4096  # rows per device per micro-batch; no accelerator holds 4,096 sequences of a 7B model
MAX_ACCUMULATION = 4096
MAX_LENGTH = 1_048_576  # 2**20 tokens: longer than any model's context
MAX_BETA = 100.0  # DPO's loss is already a step function of the margin at beta 10
# A lone UTF-16 surrogate is not a character: YAML, the database and the pages all fail on it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# RunConfig fields passed unchanged to TRL's SFTConfig/DPOConfig, whose names they share.
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


def _shown(value: Any) -> str:
    """A value for a message: short, and printable even when it is a 5,000-digit number."""
    try:
        text = repr(value)
    except ValueError:  # int.__repr__ refuses numbers past 4,300 digits
        text = "a number too long to print"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _check_range(name: str, value: int | float, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    """low <= value <= high (< where open); the message names the field and the range, e.g. (0, 10]."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if isinstance(value, float):
        _check(math.isfinite(value), f"{name}: must be a finite number, got {_shown(value)}")
    if not (above and below):
        if low == 0 and low_open:
            bound = f"must be positive and {'below' if high_open else 'at most'} {high:g}"
        else:
            bound = f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            if isinstance(value, int) and not low_open and not high_open:
                bound = f"must be from {low} to {high}"
        raise ConfigError(f"{name}: {bound}, got {_shown(value)}")


# --- the choices transformers accepts, read from its installed source -------------------------------------------
# Importing transformers.training_args would import torch (seconds, and hundreds of MB in every web worker that
# validates a run). The values are plain string constants in transformers' source, so they are read from there,
# from the version installed, with `ast`: the same values the trainer will check, without importing it.


def _transformers_source(module: str) -> Path:
    spec = importlib.util.find_spec("transformers")  # a top-level package: found without being imported
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    _check(bool(folders),
           "transformers is not installed: it is needed to check optim, lr_scheduler_type and attn_implementation")
    return Path(folders[0]) / f"{module.replace('.', '/')}.py"


@functools.cache
def _class_body(module: str, class_name: str) -> tuple[ast.stmt, ...]:
    path = _transformers_source(module)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return tuple(node.body)
    raise ConfigError(f"transformers {path.name} has no class {class_name}: its version is not one Crossfeed knows")


def _string_constants(body: tuple[ast.stmt, ...]) -> tuple[str, ...]:
    """NAME = "value" assignments of an Enum's body, in order."""
    return tuple(node.value.value for node in body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 and isinstance(node.value.value, str))


@functools.cache
def optimizer_names() -> tuple[str, ...]:
    """transformers.training_args.OptimizerNames: what TrainingArguments accepts as `optim`."""
    return _string_constants(_class_body("training_args", "OptimizerNames"))


@functools.cache
def scheduler_names() -> tuple[str, ...]:
    """transformers.trainer_utils.SchedulerType: what TrainingArguments accepts as `lr_scheduler_type`."""
    return _string_constants(_class_body("trainer_utils", "SchedulerType"))


@functools.cache
def attention_implementations() -> tuple[str, ...]:
    """What from_pretrained accepts as attn_implementation without fetching a kernel from the Hub: "eager" plus
    the keys of transformers.modeling_utils.AttentionInterface._global_mapping (PreTrainedModel's own list)."""
    for node in _class_body("modeling_utils", "AttentionInterface"):
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_global_mapping"
                                                 for t in node.targets) and isinstance(node.value, ast.Dict)):
            keys = [key.value for key in node.value.keys if isinstance(key, ast.Constant)]
            return ("eager", *(key for key in keys if isinstance(key, str)))
    raise ConfigError("transformers' AttentionInterface has no _global_mapping: its version is not one Crossfeed "
                      "knows")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1) if len(str(value)) <= 100 else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{name}: unknown {_shown(value)}{hint}; choose one of {', '.join(choices)}")


def _model_hidden_size(model_dir: str) -> int | None:
    """hidden_size from a local model's config.json (n_embd, d_model in older families), or None."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(config, dict):
        return None
    for key in ("hidden_size", "n_embd", "d_model"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


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
    auto_micro_batch: bool | str = field(default="auto", metadata={
        "help": "true, false, or auto (on with CUDA): the largest micro-batch that fits the GPU, with the "
                "accumulation cut to keep the effective batch (training/scripts/batching.py)."})
    micro_batch_memory_fraction: float = field(default=0.85, metadata={
        "help": "Share of the GPU's memory a probed micro-batch may peak at, in (0, 1]."})
    use_liger_kernel: bool | str = field(default=False, metadata={"help": "true, false, or auto (installed + CUDA)."})
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA (NF4 base); needs bitsandbytes + CUDA."})
    attn_implementation: str | None = field(default=None, metadata={"help": "eager, sdpa, flash_attention_2."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint, or auto (newest)."})
    # The base model's chat template settings (training/scripts/chat_templates.py), set by Crossfeed from the base
    # model; evaluation renders its prompts with the same two.
    chat_template_name: str = field(default="auto", metadata={
        "help": "auto (the tokenizer's template, else question_answer), question_answer or alpaca."})
    chat_template: str | None = field(default=None, metadata={"help": "A Jinja template; wins over the name."})

    def __post_init__(self) -> None:
        self._check_paths()
        self._check_lora()
        self._check_trainer()
        self._check_switches()
        _check(self.chat_template_name in TEMPLATE_NAMES, f"chat_template_name: must be one of "
               f"{', '.join(TEMPLATE_NAMES)}, got {_shown(self.chat_template_name)}")
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
        # A rank-r update of a d_in x d_out matrix has rank at most min(d_in, d_out), and every projection LoRA
        # targets in these models has the hidden size on one side: a larger r only wastes memory.
        hidden = _model_hidden_size(self.model_name_or_path)
        if hidden is not None:
            _check(isinstance(self.lora_r, int) and 1 <= self.lora_r <= hidden,
                   f"lora_r: must be from 1 to {hidden} (the model's hidden_size), got {_shown(self.lora_r)}")
        _check_range("lora_r", self.lora_r, 1, MAX_LORA_R)
        _check_range("lora_alpha", self.lora_alpha, 1, MAX_LORA_ALPHA)
        _check_range("lora_dropout", self.lora_dropout, 0, 1, high_open=True)
        _check(
            bool(self.lora_target_modules) and len(self.lora_target_modules) <= MAX_LORA_TARGETS
            and all(isinstance(name, str) and 0 < len(name) <= 200 for name in self.lora_target_modules),
            f"lora_target_modules: give a list of 1 to {MAX_LORA_TARGETS} module names, e.g. [q_proj, v_proj]",
        )
        # TRL refuses a LoRA adapter on the output layer only once the trainer starts; say so before queueing.
        _check("lm_head" not in self.lora_target_modules,
               "lora_target_modules: lm_head cannot carry a LoRA adapter in TRL; target attention or MLP projections")

    def _check_trainer(self) -> None:
        _check_range("learning_rate", self.learning_rate, 0, MAX_LEARNING_RATE, low_open=True)
        _check_choice("lr_scheduler_type", self.lr_scheduler_type, scheduler_names())
        _check_choice("optim", self.optim, optimizer_names())
        if isinstance(self.warmup_steps, float):
            _check_range("warmup_steps", self.warmup_steps, 0, 1, high_open=True)  # a ratio of the run's steps
        else:
            _check_range("warmup_steps", self.warmup_steps, 0, INT32_MAX)
        _check_range("weight_decay", self.weight_decay, 0, MAX_WEIGHT_DECAY)
        _check(self.max_steps == -1 or 1 <= self.max_steps <= INT32_MAX,
               f"max_steps: must be -1 (train num_train_epochs) or from 1 to {INT32_MAX}, "
               f"got {_shown(self.max_steps)}")
        _check_range("num_train_epochs", self.num_train_epochs, 0, MAX_EPOCHS, low_open=True)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size"):
            _check_range(name, getattr(self, name), 1, MAX_BATCH_SIZE)
        _check_range("gradient_accumulation_steps", self.gradient_accumulation_steps, 1, MAX_ACCUMULATION)
        for name in ("save_steps", "logging_steps"):
            _check_range(name, getattr(self, name), 1, INT32_MAX)
        for name in ("eval_steps", "save_total_limit"):
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), 1, INT32_MAX)
        _check_range("seed", self.seed, 0, INT32_MAX)
        _check_range("max_length", self.max_length, 1, MAX_LENGTH)

    def _check_switches(self) -> None:
        _check(self.bf16 in (True, False, "auto"), f"bf16: must be true, false or auto, got {_shown(self.bf16)}")
        _check(self.auto_micro_batch in (True, False, "auto"),
               f"auto_micro_batch: must be true, false or auto, got {_shown(self.auto_micro_batch)}")
        _check_range("micro_batch_memory_fraction", self.micro_batch_memory_fraction, 0, 1, low_open=True)
        _check(self.use_liger_kernel in (True, False, "auto"),
               f"use_liger_kernel: must be true, false or auto, got {_shown(self.use_liger_kernel)}")
        if self.attn_implementation is not None:
            # A Hub kernel ("org/repo") would be downloaded at load time, and nothing is downloaded here.
            _check_choice("attn_implementation", self.attn_implementation, attention_implementations())

    def _check_hardware(self) -> None:
        import torch

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
        _check_range("beta", self.beta, 0, MAX_BETA, low_open=True)
        if self.max_prompt_length is not None:
            _check(0 < self.max_prompt_length < self.max_length,
                   f"max_prompt_length: must be between 1 and max_length - 1 ({self.max_length - 1}), "
                   f"got {_shown(self.max_prompt_length)}")
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
        raise ConfigError(f"{name}: expected {annotation}, got {_shown(value)}")
    if origin is list:
        _check(isinstance(value, list), f"{name}: expected a list, got {_shown(value)}")
        return [_coerce(name, item, get_args(annotation)[0]) for item in value]
    if annotation in (bool, int, str):
        wanted = {bool: "true or false", int: "an integer", str: "text"}[annotation]
        # bool is a subclass of int in Python, but `lora_r: true` is a mistake, not 1.
        valid = isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
        _check(valid, f"{name}: expected {wanted}, got {_shown(value)}")
        if annotation is str:
            _check(not LONE_SURROGATE.search(value),
                   f"{name}: contains a lone surrogate escape (\\ud800-\\udfff), which is not a character")
        return value
    if annotation is float:
        # PyYAML follows YAML 1.1, which reads `1e-4` (no dot) as a string: accept any number-like text.
        _check(not isinstance(value, bool), f"{name}: expected a number, got {_shown(value)}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{name}: expected a number, got {_shown(value)}") from None
        # "inf", "nan" and 1e400 are floats to Python; no setting means any of them.
        _check(math.isfinite(number), f"{name}: must be a finite number, got {_shown(value)}")
        return number
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


