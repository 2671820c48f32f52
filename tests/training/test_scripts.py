"""sft.py and dpo.py end to end on the CPU: a tiny model, a few steps, the files the launcher relies on."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.scripts.common import DPORunConfig, SFTRunConfig, config_from_dict, load_config
from training.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
SFT = REPO / "training" / "scripts" / "sft.py"
DPO = REPO / "training" / "scripts" / "dpo.py"
TEXTS = [
    "Habari ya asubuhi, rafiki yangu.",
    "வணக்கம், நீங்கள் எப்படி இருக்கிறீர்கள்?",
    "你好，今天天气很好。",
    "مرحبا، كيف حالك اليوم؟",
    "ሰላም፣ እንዴት ነህ?",
    "Explain why the sky is blue.",
]
MANIFEST_KEYS = {"kind", "status", "adapter_path", "base_model", "config", "datasets", "code_version", "libraries",
                 "metrics", "finished_at", "global_step", "world_size", "precision", "liger_kernel"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("training")
    model = build_tiny_model(root / "model", TEXTS * 5, seed=0)
    n = len(TEXTS)
    chats = [{"messages": [{"role": "user", "content": TEXTS[i % n]},
                           {"role": "assistant", "content": TEXTS[(i + 1) % n]}], "language": "sw"}
             for i in range(8)]
    # Crossfeed's export shape: the pair plus metadata columns the trainer must never see.
    pairs = [{"prompt": [{"role": "user", "content": TEXTS[i % n]}],
              "chosen": [{"role": "assistant", "content": TEXTS[(i + 1) % n]}],
              "rejected": [{"role": "assistant", "content": TEXTS[(i + 2) % n]}],
              "prompt_language": "sw", "response_language": "ta", "item": f"item-{i}", "chosen_model": "a",
              "rejected_model": "b", "votes_for": 3, "votes_against": 0, "n_judgments": 3,
              "split": "test" if i == 8 else "train"}
             for i in range(9)]
    return {"root": root, "model": model, "sft": write_jsonl(root / "sft.jsonl", chats),
            "dpo": write_jsonl(root / "pairs.jsonl", pairs)}


def run(script: Path, config: dict[str, Any], folder: Path, *, launcher: list[str] | None = None):
    """Write the YAML and run the script in a fresh process from the repository root, as the worker will."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{script.stem}.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "HF_HOME": str(folder / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    command = [*(launcher or [sys.executable]), str(script), "--config", str(config_path)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def base_config(workspace: dict[str, Path], output_dir: Path, train_file: Path, **overrides: Any) -> dict[str, Any]:
    config = {"model_name_or_path": str(workspace["model"]), "output_dir": str(output_dir),
              "train_file": str(train_file), "max_steps": 4, "save_steps": 2, "logging_steps": 1,
              "per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
              "gradient_checkpointing": False, "seed": 0}
    return {**config, **overrides}


def read_metrics(output_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-4000:]


def assert_run_artifacts(output_dir: Path, data_file: Path, *, steps: tuple[int, ...]) -> dict[str, Any]:
    adapter = output_dir / "adapter"
    for step in steps:
        checkpoint = output_dir / f"checkpoint-{step}"
        assert (checkpoint / "adapter_model.safetensors").is_file()
        assert (checkpoint / "run_config.yaml").is_file() and (checkpoint / "run_provenance.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    data_hash = hashlib.sha256(data_file.read_bytes()).hexdigest()
    provenance = json.loads((adapter / "run_provenance.json").read_text())
    assert provenance["datasets"]["train_file"]["sha256"] == data_hash
    assert yaml.safe_load((adapter / "run_config.yaml").read_text())["train_file"] == str(data_file)
    manifest_path = output_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest.keys() >= MANIFEST_KEYS
    assert manifest["status"] == "succeeded" and manifest["adapter_path"] == str(adapter)
    assert manifest["datasets"]["train_file"]["sha256"] == data_hash
    assert {"torch", "transformers", "trl", "peft"} <= manifest["libraries"].keys()
    assert manifest["metrics"]["train"]["train_loss"] is not None
    newest = max(path.stat().st_mtime_ns for path in output_dir.rglob("*") if path.is_file()
                 and path != manifest_path and path.name != "metrics.jsonl")
    assert manifest_path.stat().st_mtime_ns >= newest, "manifest.json must be the last file written"
    assert not list(output_dir.glob(".manifest.json.*")), "the temporary manifest must be renamed away"
    return manifest


@pytest.fixture(scope="module")
def sft_run(workspace: dict[str, Path]) -> Path:
    output_dir = workspace["root"] / "sft"
    config = base_config(workspace, output_dir, workspace["sft"], packing=True, assistant_only_loss=True)
    assert_ok(run(SFT, config, workspace["root"] / "sft-config"))
    return output_dir


@pytest.mark.slow
def test_sft_writes_metrics_checkpoints_adapter_and_manifest(sft_run: Path, workspace: dict[str, Path]) -> None:
    manifest = assert_run_artifacts(sft_run, workspace["sft"], steps=(2, 4))
    assert manifest["kind"] == "sft" and manifest["global_step"] == 4
    events = read_metrics(sft_run)
    assert events[0]["event"] == "train_begin" and events[0]["max_steps"] == 4
    losses = [event for event in events if event["event"] == "log" and "loss" in event]
    assert [event["step"] for event in losses] == [1, 2, 3, 4]
    assert all({"epoch", "timestamp", "learning_rate"} <= event.keys() for event in losses)
    assert events[-1]["event"] == "train_end" and events[-1]["cancelled"] is False
    # The saved config is a valid run config again: the run can be repeated from it.
    assert load_config(sft_run / "adapter" / "run_config.yaml", SFTRunConfig).packing is True


@pytest.mark.slow
def test_dpo_from_sft_adapter_drops_metadata_and_logs_rewards(sft_run: Path, workspace: dict[str, Path]) -> None:
    output_dir = workspace["root"] / "dpo"
    config = base_config(workspace, output_dir, workspace["dpo"], adapter_path=str(sft_run / "adapter"),
                         learning_rate=5e-4, beta=0.1, max_prompt_length=16)
    assert_ok(run(DPO, config, workspace["root"] / "dpo-config"))
    manifest = assert_run_artifacts(output_dir, workspace["dpo"], steps=(2, 4))
    assert manifest["kind"] == "dpo" and manifest["sft_adapter"] == str(sft_run / "adapter")
    assert manifest["train_rows"] == 8, "the row marked split: test must not be trained on"
    logs = [event for event in read_metrics(output_dir) if event["event"] == "log" and "loss" in event]
    assert len(logs) == 4
    assert all({"rewards/accuracies", "rewards/margins"} <= event.keys() for event in logs)


@pytest.mark.slow
def test_resume_auto_continues_from_the_last_checkpoint(workspace: dict[str, Path]) -> None:
    output_dir = workspace["root"] / "resume"
    first = base_config(workspace, output_dir, workspace["sft"], max_steps=2, resume_from_checkpoint="auto")
    assert_ok(run(SFT, first, workspace["root"] / "resume-1"))
    assert json.loads((output_dir / "manifest.json").read_text())["global_step"] == 2
    assert_ok(run(SFT, {**first, "max_steps": 4}, workspace["root"] / "resume-2"))
    begins = [event for event in read_metrics(output_dir) if event["event"] == "train_begin"]
    assert [(event["step"], event["max_steps"]) for event in begins] == [(0, 2), (2, 4)]
    manifest = json.loads((output_dir / "manifest.json").read_text())
    assert manifest["global_step"] == 4 and manifest["resumed_from"] == str(output_dir / "checkpoint-2")
    steps = [event["step"] for event in read_metrics(output_dir) if event["event"] == "log" and "loss" in event]
    assert steps == [1, 2, 3, 4]


@pytest.mark.slow
def test_cancel_file_stops_training_at_the_next_step(workspace: dict[str, Path]) -> None:
    output_dir = workspace["root"] / "cancel"
    output_dir.mkdir()
    (output_dir / "CANCEL").touch()
    result = run(SFT, base_config(workspace, output_dir, workspace["sft"], max_steps=50), workspace["root"] / "c")
    assert result.returncode == 3, result.stderr[-4000:]
    events = read_metrics(output_dir)
    assert [event["event"] for event in events if event["event"] != "log"][-3:] == ["cancelled", "save", "train_end"]
    assert events[-1]["step"] == 1 and events[-1]["cancelled"] is True
    assert (output_dir / "checkpoint-1" / "adapter_model.safetensors").is_file(), "resumable after a cancel"
    assert not (output_dir / "manifest.json").exists() and not (output_dir / "adapter").exists()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"learning_rate": -1e-4}, "learning_rate"),
        ({"train_file": "/nonexistent/pairs.jsonl"}, "/nonexistent/pairs.jsonl"),
        ({"learnig_rate": 1e-4}, "learnig_rate"),
    ],
)
def test_invalid_config_exits_non_zero_naming_the_field(
    workspace: dict[str, Path], override: dict[str, Any], named: str
) -> None:
    output_dir = workspace["root"] / "invalid"
    config = {**base_config(workspace, output_dir, workspace["sft"]), **override}
    result = run(SFT, config, workspace["root"] / "invalid-config")
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not output_dir.exists(), "nothing is written for a config that does not validate"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lora_r": "eight"}, "lora_r: expected an integer"),
        ({"lora_dropout": 1.5}, "lora_dropout: must be in [0, 1)"),
        ({"max_prompt_length": 64}, "max_prompt_length: must be between 1 and max_length - 1"),
        ({"lr_scheduler_type": "cosine_wobble"}, "lr_scheduler_type: unknown 'cosine_wobble'"),
        ({"load_in_4bit": True, "adapter_path": None}, "load_in_4bit:"),
        ({"model_name_or_path": "meta-llama/Llama-2-7b-hf"}, "model_name_or_path: meta-llama/Llama-2-7b-hf is not"),
    ],
)
def test_config_errors_name_the_field(workspace: dict[str, Path], override: dict[str, Any], message: str) -> None:
    from training.scripts.common import ConfigError

    values = {**base_config(workspace, workspace["root"] / "unused", workspace["dpo"]), **override}
    with pytest.raises(ConfigError) as error:
        config_from_dict(values, DPORunConfig)
    assert str(error.value).startswith(message)


def test_yaml_numbers_without_a_dot_are_accepted(workspace: dict[str, Path]) -> None:
    """PyYAML reads `5e-4` as text (YAML 1.1); a learning rate written that way must still work."""
    values = yaml.safe_load(f"model_name_or_path: {workspace['model']}\noutput_dir: out\n"
                            f"train_file: {workspace['dpo']}\nlearning_rate: 5e-4\nbeta: 1e-1\n")
    config = config_from_dict(values, DPORunConfig)
    assert (config.learning_rate, config.beta) == (5e-4, 0.1)


@pytest.mark.parametrize(
    ("preset", "config_cls"), [("sft_paper.yaml", SFTRunConfig), ("dpo_paper.yaml", DPORunConfig)]
)
def test_paper_presets_hold_only_known_fields(workspace: dict[str, Path], preset: str, config_cls: type) -> None:
    values = yaml.safe_load((REPO / "training" / "configs" / preset).read_text())
    values.update(model_name_or_path=str(workspace["model"]), train_file=str(workspace["sft"]), adapter_path=None)
    if config_cls is SFTRunConfig:
        values.pop("adapter_path")
    config = config_from_dict(values, config_cls)
    assert (config.lora_r, config.lora_alpha, config.lora_dropout, config.warmup_steps) == (8, 16, 0.05, 100)
    assert config.lr_scheduler_type == "cosine" and config.max_length == 1024


def test_max_prompt_length_keeps_the_end_of_the_prompt() -> None:
    from datasets import Dataset

    from training.scripts.dpo import truncate_prompts

    rows = Dataset.from_dict({"prompt_ids": [[1, 2, 3, 4, 5], [6, 7]], "chosen_ids": [[8], [9]]})
    assert truncate_prompts(rows, 3)["prompt_ids"] == [[3, 4, 5], [6, 7]]
    assert truncate_prompts(rows, None) is rows


@pytest.mark.slow
def test_dpo_under_accelerate_with_two_processes(workspace: dict[str, Path]) -> None:
    output_dir = workspace["root"] / "dpo-accelerate"
    # A free port: two launches on one host must not meet at torchrun's default rendezvous port 29500.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(REPO / "training" / "configs" / "accelerate" / "cpu.yaml"), "--num_processes", "2",
                "--main_process_port", str(port)]
    config = base_config(workspace, output_dir, workspace["dpo"], per_device_train_batch_size=1)
    assert_ok(run(DPO, config, workspace["root"] / "dpo-accelerate-config", launcher=launcher))
    manifest = assert_run_artifacts(output_dir, workspace["dpo"], steps=(2, 4))
    assert manifest["world_size"] == 2
    events = read_metrics(output_dir)
    # Only the main process writes: one train_begin, one line per logged step.
    assert [event["event"] for event in events].count("train_begin") == 1
    assert events[0]["world_size"] == 2 and events[0]["total_batch_size"] == 2
    logs = [event for event in events if event["event"] == "log" and "loss" in event]
    assert [event["step"] for event in logs] == [1, 2, 3, 4]
    assert all("rewards/accuracies" in event for event in logs)
