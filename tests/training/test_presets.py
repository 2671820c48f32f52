"""Presets that fit the data: the scaled preset (the default) works out the batch, logging and checkpoint intervals
from the number of training rows and warms up for a share of the run; the paper's absolute settings stay available
as the preset "paper". The arithmetic is in the comments."""

from __future__ import annotations

import json

import pytest

from crossfeed.errors import InvalidInput
from tests.training.conftest import FAST
from training.presets import effective_batch, optimizer_steps, scaled_settings


def settings_tuple(rows: int, **kwargs) -> tuple[int, int, int, int]:
    fitted = scaled_settings(rows=rows, **kwargs)
    return (fitted["per_device_train_batch_size"], fitted["gradient_accumulation_steps"], fitted["logging_steps"],
            fitted["save_steps"])


def test_a_300_pair_export_trains_38_steps_and_logs_every_one():
    # 300 // 32 = 9 -> largest power of two <= 9 = 8 pairs per step = 8 per device x 1 accumulation x 1 process.
    assert effective_batch(300) == 8
    # ceil(300 / 8) = 38 optimizer steps; a log line every max(1, 38 // 50) = 1 step; a checkpoint every
    # ceil(38 / 10) = 4 steps.
    assert settings_tuple(300) == (8, 1, 1, 4)
    assert optimizer_steps(rows=300, micro_batch=8, accumulation=1, processes=1, epochs=1) == 38


def test_the_warm_up_ratio_leaves_a_small_run_at_its_peak_learning_rate():
    from transformers import TrainingArguments

    # DPO's scaled preset warms up for 0.1 of the run: ceil(0.1 x 38) = 4 of 38 steps; SFT's for 0.03: 2 steps.
    # The paper's 100 steps at its 8 x 4 = 32 pairs per step: ceil(300 / 32) = 10 steps, all in warm-up, so the
    # learning rate would end at 10 / 100 = 10 % of its peak.
    assert TrainingArguments(output_dir="unused", warmup_steps=0.1).get_warmup_steps(38) == 4
    assert TrainingArguments(output_dir="unused", warmup_steps=0.03).get_warmup_steps(38) == 2
    assert TrainingArguments(output_dir="unused", warmup_steps=100).get_warmup_steps(10) == 100


@pytest.mark.parametrize(
    "rows, processes, expected",
    [
        # 40 // 32 = 1 pair per step: 40 steps, logged every step, a checkpoint every ceil(40 / 10) = 4.
        (40, 1, (1, 1, 1, 4)),
        # 10,000 // 32 = 312 -> capped at the paper's 256 = 8 per device x 8 accumulation x 4 processes;
        # each process reads ceil(10,000 / 4) = 2,500 rows = 313 micro-batches -> ceil(313 / 8) = 40 steps.
        (10_000, 4, (8, 8, 1, 4)),
        # 100,000 on one GPU: 256 = 8 x 32; ceil(ceil(100,000 / 8) / 32) = ceil(12,500 / 32) = 391 steps;
        # a log line every 391 // 50 = 7 steps, a checkpoint every ceil(391 / 10) = 40.
        (100_000, 1, (8, 32, 7, 40)),
        # 100 pairs on 8 processes: 100 // 32 = 3 -> 2 per step; 2 // 8 = 0 -> 1 per device, accumulation 1, so
        # 8 per step: ceil(ceil(100 / 8) / 1) = 13 steps.
        (100, 8, (1, 1, 1, 2)),
    ],
)
def test_the_batch_and_intervals_grow_with_the_data(rows, processes, expected):
    assert settings_tuple(rows, processes=processes) == expected


def test_settings_a_run_gives_are_kept_and_the_rest_fitted_around_them():
    # 300 rows want 8 per step; with 4 per device that is 4 x 2 accumulation: ceil(ceil(300 / 4) / 2) = 38 steps.
    assert settings_tuple(300, given={"per_device_train_batch_size": 4}) == (4, 2, 1, 4)
    # max_steps 500 sets the run's length: a log line every 500 // 50 = 10 steps, a checkpoint every 50.
    assert settings_tuple(300, max_steps=500) == (8, 1, 10, 50)
    assert settings_tuple(300, given={"logging_steps": 5, "save_steps": "x"})[2:] == (5, "x"), "validation's job"


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_the_scaled_preset_files_run_as_they_are_with_the_values_of_a_300_row_export(stage, tiny_model_dir, tmp_path):
    from pathlib import Path

    import yaml

    from training.scripts.config import DPORunConfig, SFTRunConfig, config_from_dict

    values = yaml.safe_load((Path(__file__).resolve().parents[2] / "training" / "configs" / f"{stage}_scaled.yaml")
                            .read_text(encoding="utf-8"))
    train_file = tmp_path / "rows.jsonl"
    train_file.write_text("{}\n", encoding="utf-8")
    values.update(model_name_or_path=str(tiny_model_dir), train_file=str(train_file), output_dir=str(tmp_path))
    config = config_from_dict(values, SFTRunConfig if stage == "sft" else DPORunConfig, check_environment=False)
    assert {name: getattr(config, name) for name in scaled_settings(rows=300)} == scaled_settings(rows=300)
    assert config.warmup_steps == (0.03 if stage == "sft" else 0.1)


def upload(rows: int):
    from training.services.runs import uploads_root

    folder = uploads_root()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sft-{rows}.jsonl"
    line = {"messages": [{"role": "user", "content": "Habari?"}, {"role": "assistant", "content": "Nzuri."}]}
    path.write_text((json.dumps(line) + "\n") * rows, encoding="utf-8")
    return str(path)


def test_a_run_resolves_the_scaled_preset_by_default_and_the_paper_preset_by_name(base, media):
    from training.services.runs import training_run_create

    scaled = training_run_create(kind="sft", base_model=base, sft_file=upload(300), enqueue=False).resolved["sft"]
    assert (scaled["per_device_train_batch_size"], scaled["gradient_accumulation_steps"], scaled["logging_steps"],
            scaled["save_steps"]) == (8, 1, 1, 4)
    assert (scaled["warmup_steps"], scaled["packing"], scaled["learning_rate"]) == (0.03, False, 1e-4)

    paper = training_run_create(kind="sft", base_model=base, sft_file=upload(300), enqueue=False,
                                params={"preset": "paper"}).resolved["sft"]
    # The paper: 8 per device x 8 accumulation, 100 warm-up steps, a log line every 10 steps, packed sequences.
    assert (paper["per_device_train_batch_size"], paper["gradient_accumulation_steps"], paper["logging_steps"],
            paper["save_steps"], paper["warmup_steps"], paper["packing"]) == (8, 8, 10, 2000, 100, True)

    mine = training_run_create(kind="sft", base_model=base, sft_file=upload(300), enqueue=False,
                               params={"sft": {"gradient_accumulation_steps": 2}}).resolved["sft"]
    # Given accumulation 2 on the fitted 8 per device: 16 per step, ceil(ceil(300 / 8) / 2) = 19 steps.
    assert (mine["gradient_accumulation_steps"], mine["save_steps"]) == (2, 2)

    with pytest.raises(InvalidInput, match="preset: one of scaled, paper"):
        training_run_create(kind="sft", base_model=base, sft_file=upload(300), enqueue=False,
                            params={"preset": "huge"})


def test_the_form_prefills_no_setting_the_scaled_preset_works_out():
    from training.services.runs import params_template

    dpo = params_template("dpo")["dpo"]
    assert "gradient_accumulation_steps" not in dpo and "logging_steps" not in dpo and dpo["warmup_steps"] == 0.1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_small_export_leaves_warm_up_and_the_charts_get_a_point_per_step(base, preference_export):
    from training.models import TrainingMetric
    from training.services.execution import training_run_execute
    from training.services.runs import training_run_create

    rows = next(f["rows"] for f in preference_export.files if f["name"].startswith("train."))
    assert rows < 32, "fewer pairs than the paper's 8 x 4 = 32 per step: one step there, never logged"
    # Only lengths from FAST: batch, warm-up and logging come from the preset.
    lengths = {key: FAST[key] for key in ("max_length", "max_prompt_length", "gradient_checkpointing")}
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, params=lengths, enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == "succeeded", run.error + run.log_tail
    # rows // 32 = 0 -> 1 pair per step: `rows` steps, each logged; warm-up ceil(0.1 x rows) steps.
    points = [m.values for m in TrainingMetric.objects.filter(run=run, event="log") if "loss" in m.values]
    assert run.total_steps == rows and len(points) == rows
    peak = run.resolved["dpo"]["learning_rate"]
    assert max(point["learning_rate"] for point in points) == pytest.approx(peak, rel=0.05), "warm-up ended"
