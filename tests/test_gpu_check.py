"""bench/gpu_check.py, the one GPU check script, run here as `--smoke` (the CPU, the tiny model): every section
prints its JSON line, the training comparison really trains both sides with the same settings, and the script and
the processes it starts run without Django, as they must on a GPU host whose image has none of Django's
dependencies. A stand-in `django` package that refuses to import is put first on PYTHONPATH for that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # four training processes and two generation runs on the CPU: about a minute or two

REPO = Path(__file__).resolve().parent.parent
REFUSE = "raise ImportError('{name} must not be imported here: {why}')\n"


def refusing_packages(folder: Path, names: dict[str, str]) -> str:
    """A PYTHONPATH entry whose packages `names` raise ImportError when imported (shadowing installed ones)."""
    for name, why in names.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(REFUSE.format(name=name, why=why), encoding="utf-8")
    return os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])


def run_check(tmp_path: Path, *arguments: str, refuse: dict[str, str]) -> tuple[subprocess.CompletedProcess, list]:
    out = tmp_path / "out" / "gpu_check.jsonl"
    env = {**os.environ, "PYTHONPATH": refusing_packages(tmp_path / "refuse", refuse), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke", "--out", str(out),
                           *arguments], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False)
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.is_file() else []
    assert printed == written, "--out must hold exactly the lines printed"
    return done, printed


def by_section(lines: list[dict]) -> dict[str, dict]:
    assert all(line["bench"] == "gpu_check" and line["device"] == "cpu (smoke run)" and line["smoke"]
               for line in lines)
    return {line["section"]: line for line in lines}


def test_smoke_runs_every_section_without_django(tmp_path):
    done, lines = run_check(tmp_path, refuse={"django": "the GPU check runs where Django is not installed"})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    sections = by_section(lines)
    assert list(sections) == ["environment", "a", "b", "c"]
    assert sections["environment"]["versions"]["trl"] and sections["environment"]["missing_for_section_a"] == []

    training = sections["a"]
    assert training["ok"] and training["settings"]["dpo_on_sft_adapter"]
    for stage in ("sft", "dpo"):
        ours, bare = training[stage]["crossfeed"], training[stage]["bare_trl"]
        for run in (ours, bare):
            assert run["exit_code"] == 0 and run["adapter"] and run["tokens_per_s"] > 0 and run["timed_steps"] == 3
        assert ours["manifest_status"] == "succeeded" and ours["settings_differ"] == []
        # Same model, rows, template, LoRA, seed and schedule: the same losses, step for step.
        assert ours["first_loss"] == pytest.approx(bare["first_loss"], rel=1e-6)
        assert ours["last_loss"] == pytest.approx(bare["last_loss"], rel=1e-3)
        assert training[stage]["same_tokens_per_step"] and training[stage]["ratio"] > 0
        assert training[stage]["meets_target"] is None  # a smoke run claims no figure
        # The fitted run: 2 x 4 asked for, and on the CPU (auto_micro_batch: true, "fits" = the step ran) the
        # largest divisor of the effective batch, 8 x 1, was taken.
        fitted = training["fitted"][stage]
        assert fitted["exit_code"] == 0 and fitted["manifest_status"] == "succeeded" and fitted["tokens_per_s"] > 0
        assert (fitted["micro_batch"], fitted["accumulation"]) == (8, 1) and fitted["effective_batch"] == 8
        assert [probe["micro_batch"] for probe in fitted["probes"]] == [4, 8]

    generation = sections["b"]
    assert generation["ok"] and [run["batch_size"] for run in generation["transformers"]] == [2, 4]
    for run in generation["transformers"]:
        assert run["prompts"] == run["outputs"] == 6 and run["errors"] == 0 and run["new_tokens"] > 0
        assert run["tokens_per_s"] > 0 and run["prompts_per_s"] > 0
    assert "vllm" in generation["vllm"]["skipped"] or "CUDA" in generation["vllm"]["skipped"]

    evaluation = sections["c"]
    assert evaluation["ok"] and [run["batch_size"] for run in evaluation["generate"]] == [2, 4]
    assert all(run["new_tokens"] > 0 and run["tokens_per_s"] > 0 for run in evaluation["generate"])
    assert all(run["options"] == 16 and run["options_per_s"] > 0 and run["finite"]
               for run in evaluation["score_options"])


def test_a_missing_trl_is_named_and_the_other_sections_still_run(tmp_path):
    done, lines = run_check(tmp_path, "--sections", "a,c",
                            refuse={"django": "the GPU check runs where Django is not installed",
                                    "trl": "this test stands for a GPU host without trl"})
    assert done.returncode == 1  # a section asked for did not run
    sections = by_section(lines)
    assert list(sections) == ["environment", "a", "c"]
    assert not sections["a"]["ok"] and "trl" in sections["a"]["skipped"] and ".whl" in sections["a"]["skipped"]
    assert "gpu_check: section a needs trl" in done.stderr
    assert sections["c"]["ok"]
