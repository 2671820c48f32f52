"""Evaluation fixtures: the tiny local model, a registered base model, and finished runs built without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.models import JobStatus
from evaluation.models import EvaluationResult, EvaluationRun
from training.models import BaseModel


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """The tiny model's matrices are so small that a second thread only adds waiting: on a busy 2-core machine the
    end-to-end test took 26 s with two threads and 10 s with one. Restored when this folder's tests end."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny random Llama model (2 layers, byte-level BPE, a chat template), built once per session."""
    from training.services.registry import tiny_model_build

    folder = tmp_path_factory.mktemp("tiny-eval") / "tiny-llama"
    tiny_model_build(output_dir=folder, register=False)
    return folder


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """The tiny model loaded once on the CPU (inference tests only read it)."""
    from evaluation.inference import ModelSpec, load_model

    return load_model(ModelSpec(str(tiny_model_dir)), device="cpu")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def tiny_base(db, tiny_model_dir) -> BaseModel:
    from training.services.registry import base_model_register

    return base_model_register(name="tiny", path=str(tiny_model_dir))


@pytest.fixture
def plain_base(db, tmp_path) -> BaseModel:
    """A base model row whose folder is never loaded: for pages and API tests that need finished runs only."""
    folder = tmp_path / "plain-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return BaseModel.objects.create(name="plain", path=str(folder))


@pytest.fixture
def finished_run(plain_base, settings):
    """Make a succeeded run with the given result rows and output records, as the worker would have left it."""

    def make(*, results=(), skipped=(), records=(), benchmarks=None, base_model=None, model_version=None,
             status=JobStatus.SUCCEEDED) -> EvaluationRun:
        names = benchmarks or sorted({row[0] for row in [*results, *skipped]}) or ["flores-en-xx"]
        run = EvaluationRun.objects.create(
            base_model=base_model or (model_version.base_model if model_version else plain_base),
            model_version=model_version, benchmarks=names, status=status, progress_done=len(records),
            progress_total=len(records), finished_at=timezone.now(), tokens_per_second=123.4,
        )
        path = Path(settings.MEDIA_ROOT) / "evaluation" / f"run-{run.pk}" / "outputs.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        run.outputs_path = str(path)
        run.save(update_fields=["outputs_path"])
        for benchmark, language, metric, value, n in results:
            EvaluationResult.objects.create(run=run, benchmark=benchmark, language=language, metric=metric,
                                            value=value, n=n)
        for benchmark, language, reason in skipped:
            EvaluationResult.objects.create(run=run, benchmark=benchmark, language=language, skipped=True,
                                            reason=reason)
        return run

    return make


def output_record(benchmark: str, language: str, example_id: str, output: str, *, off_target=False,
                  expected: str | None = None, reference: str = "ref", input_text: str = "in") -> dict:
    return {"benchmark": benchmark, "language": language, "id": example_id, "input": input_text,
            "reference": reference, "output": output, "expected_language": expected or language,
            "off_target": off_target, "new_tokens": 3, "truncated": False}
