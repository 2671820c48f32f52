"""Micro-batches sized to the card (training/scripts/batching.py): the pure search, and the real path through sft.py
and dpo.py on the CPU, where `auto_micro_batch: true` asks for the search and "fits" means the step ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.scripts.batching import Probe, candidates, search
from training.scripts.common import SFTRunConfig, config_from_dict

from .test_scripts import DPO, SFT, assert_ok, base_config, read_metrics, run, workspace  # noqa: F401


def test_candidates_divide_the_effective_batch_and_exceed_the_preset() -> None:
    assert candidates(micro_batch=8, accumulation=8) == [16, 32, 64]
    assert candidates(micro_batch=2, accumulation=6) == [3, 4, 6, 12]
    assert candidates(micro_batch=4, accumulation=1) == [], "nothing to gain when one micro-batch is the step"


def test_search_keeps_the_largest_that_fits_and_stops_at_the_first_that_does_not() -> None:
    tried = []

    def fits(size: int) -> Probe:
        tried.append(size)
        return Probe(size, size * 1.5 <= 40, peak_gib=size * 1.5)

    best, probes = search([16, 32, 64], fits)
    assert best == 16 and tried == [16, 32], "64 is never tried once 32 did not fit"
    assert [probe.fits for probe in probes] == [True, False]


def test_search_gives_none_when_nothing_fits() -> None:
    best, probes = search([16, 32], lambda size: Probe(size, False, error="out of memory"))
    assert best is None and len(probes) == 1


@pytest.mark.parametrize(("value", "message"), [
    ("yes", "auto_micro_batch: must be true, false or auto"),
    (None, "auto_micro_batch: expected bool | str"),
])
def test_auto_micro_batch_is_checked(workspace: dict[str, Path], value, message: str) -> None:  # noqa: F811
    config = base_config(workspace, workspace["root"] / "unused", workspace["sft"], auto_micro_batch=value)
    with pytest.raises(Exception, match=message):
        config_from_dict(config, SFTRunConfig)


def test_memory_fraction_is_checked(workspace: dict[str, Path]) -> None:  # noqa: F811
    config = base_config(workspace, workspace["root"] / "unused", workspace["sft"], micro_batch_memory_fraction=0)
    with pytest.raises(Exception, match="micro_batch_memory_fraction"):
        config_from_dict(config, SFTRunConfig)


def _manifest(output_dir: Path) -> dict:
    return json.loads((output_dir / "manifest.json").read_text())


@pytest.mark.slow
def test_sft_grows_the_micro_batch_and_keeps_the_effective_batch(workspace: dict[str, Path]) -> None:  # noqa: F811
    # 8 rows, 1 x 4 per step: 2 optimizer steps an epoch, whatever the split into micro-batches.
    output_dir = workspace["root"] / "sft-auto"
    config = base_config(workspace, output_dir, workspace["sft"], max_steps=-1, num_train_epochs=1,
                         per_device_train_batch_size=1, gradient_accumulation_steps=4, auto_micro_batch=True)
    assert_ok(run(SFT, config, workspace["root"] / "sft-auto-config"))
    manifest = _manifest(output_dir)
    plan = manifest["micro_batch"]
    assert plan["enabled"] is True and plan["preset_micro_batch"] == 1 and plan["preset_accumulation"] == 4
    assert (plan["micro_batch"], plan["accumulation"]) == (4, 1), plan
    assert [probe["micro_batch"] for probe in plan["probes"]] == [2, 4]
    assert 1 <= plan["sequence_length"] <= 64 and plan["sequences_per_row"] == 1
    assert manifest["global_step"] == 2, "the same optimizer steps as 1 x 4"
    begin = read_metrics(output_dir)[0]
    assert begin["event"] == "train_begin" and begin["total_batch_size"] == 4


@pytest.mark.slow
def test_auto_keeps_the_preset_without_a_gpu(workspace: dict[str, Path]) -> None:  # noqa: F811
    output_dir = workspace["root"] / "sft-keep"
    config = base_config(workspace, output_dir, workspace["sft"], max_steps=2, per_device_train_batch_size=1,
                         gradient_accumulation_steps=2)
    assert_ok(run(SFT, config, workspace["root"] / "sft-keep-config"))
    plan = _manifest(output_dir)["micro_batch"]
    assert plan["enabled"] is False and "no CUDA GPU" in plan["reason"]
    assert (plan["micro_batch"], plan["accumulation"]) == (1, 2) and plan["probes"] == []


@pytest.mark.slow
def test_dpo_probes_both_answers_of_a_pair(workspace: dict[str, Path]) -> None:  # noqa: F811
    output_dir = workspace["root"] / "dpo-auto"
    config = base_config(workspace, output_dir, workspace["dpo"], max_steps=2, per_device_train_batch_size=1,
                         gradient_accumulation_steps=2, auto_micro_batch=True, beta=0.1,
                         gradient_checkpointing=True)
    assert_ok(run(DPO, config, workspace["root"] / "dpo-auto-config"))
    plan = _manifest(output_dir)["micro_batch"]
    assert (plan["micro_batch"], plan["accumulation"]) == (2, 1) and plan["sequences_per_row"] == 2
