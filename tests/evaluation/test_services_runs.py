"""Creating, retrying, cancelling runs; validation before anything is queued; adapters; evaluation after training."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import JobStatus
from crossfeed.errors import Conflict, InvalidInput
from evaluation.benchmarks import benchmark_names, get_benchmark
from evaluation.models import BenchmarkSource, EvaluationRun
from evaluation.services import (
    benchmark_source_set,
    evaluation_after_training,
    evaluation_run_cancel,
    evaluation_run_create,
    evaluation_run_retry,
    evaluation_runs_fail_stale,
)
from evaluation.services.runs import adapter_chain, model_spec
from training.models import ModelVersion, TrainingRun


def adapter_folder(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return str(folder)


@pytest.fixture
def versions(plain_base, tmp_path):
    """An SFT version and the DPO version trained on top of it (its parent), as an sft_dpo run registers them."""
    run = TrainingRun.objects.create(kind="sft_dpo", base_model=plain_base, status=JobStatus.SUCCEEDED)
    sft = ModelVersion.objects.create(name="plain-sft-run1", base_model=plain_base, run=run, kind="sft",
                                      adapter_path=adapter_folder(tmp_path, "sft"))
    dpo = ModelVersion.objects.create(name="plain-dpo-run1", base_model=plain_base, run=run, kind="dpo",
                                      parent=sft, adapter_path=adapter_folder(tmp_path, "dpo"))
    return run, sft, dpo


def test_it_creates_a_run_with_its_sources_and_total(plain_base):
    run = evaluation_run_create(base_model=plain_base, benchmarks=["xcopa", "pawsx"], languages=["sw", "zh"],
                                limit=3, enqueue=False)
    assert run.status == JobStatus.QUEUED
    assert run.languages == ["sw", "zh-Hans"], "codes are normalised"
    assert run.sources == {"xcopa": str(get_benchmark("xcopa").sample_root),
                           "pawsx": str(get_benchmark("pawsx").sample_root)}
    # xcopa: sw 3 + zh 3; pawsx: zh 3, sw skipped.
    assert run.progress_total == 9
    assert run.outputs_path.endswith(f"evaluation/run-{run.pk}/outputs.jsonl")
    assert (run.max_new_tokens, run.batch_size) == (512, 8)


@pytest.mark.parametrize(
    "arguments, field, message",
    [
        ({"benchmarks": []}, "benchmarks", "a non-empty list"),
        ({"benchmarks": ["mmlu"]}, "benchmarks", "unknown benchmark 'mmlu'"),
        ({"benchmarks": ["xcopa"], "languages": ["klingon"]}, "languages", "unknown language 'klingon'"),
        ({"benchmarks": ["xcopa"], "limit": 0}, "limit", "a whole number from 1"),
        ({"benchmarks": ["xcopa"], "max_new_tokens": 0}, "max_new_tokens", "a whole number from 1 to 8192"),
        ({"benchmarks": ["xcopa"], "batch_size": True}, "batch_size", "a whole number"),
        ({"benchmarks": ["pawsx"], "languages": ["sw", "ta"]}, "languages", "nothing to evaluate"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(plain_base, arguments, field, message):
    with pytest.raises(InvalidInput, match=message) as caught:
        evaluation_run_create(base_model=plain_base, enqueue=False, **arguments)
    assert caught.value.field == field
    assert not EvaluationRun.objects.exists()


def test_it_needs_exactly_one_model(plain_base, versions):
    with pytest.raises(InvalidInput, match="either a model version or a base model"):
        evaluation_run_create(benchmarks=["xcopa"], enqueue=False)
    with pytest.raises(InvalidInput, match="either"):
        evaluation_run_create(benchmarks=["xcopa"], base_model=plain_base, model_version=versions[1], enqueue=False)


def test_a_malformed_benchmark_file_is_refused_with_its_file_and_line(plain_base, tmp_path):
    root = Path(shutil.copytree(get_benchmark("xcopa").sample_root, tmp_path / "xcopa"))
    path = root / "sw" / "test.sw.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + '{"premise": "x", "choice1": "a"}\n', encoding="utf-8")
    benchmark_source_set(name="xcopa", path=str(root))
    with pytest.raises(InvalidInput) as caught:
        evaluation_run_create(base_model=plain_base, benchmarks=["xcopa"], enqueue=False)
    assert caught.value.field == "benchmarks"
    assert f'{path} line 5: "choice2" must be a non-empty string' in caught.value.message
    assert not EvaluationRun.objects.exists()
    # The same files, but only the languages that are fine: accepted.
    assert evaluation_run_create(base_model=plain_base, benchmarks=["xcopa"], languages=["ta"], enqueue=False)


def test_a_missing_data_folder_is_refused(plain_base, tmp_path):
    folder = tmp_path / "flores"
    folder.mkdir()
    BenchmarkSource.objects.create(name="flores200", path=str(folder / "gone"))
    with pytest.raises(InvalidInput, match="the data folder of flores-en-xx does not exist"):
        evaluation_run_create(base_model=plain_base, benchmarks=["flores-en-xx"], enqueue=False)
    run = evaluation_run_create(base_model=plain_base, benchmarks=["flores-en-xx"], samples=True, enqueue=False)
    assert run.sources["flores-en-xx"] == str(get_benchmark("flores-en-xx").sample_root)


def test_a_source_named_after_the_benchmark_wins_over_the_dataset(plain_base, tmp_path):
    shutil.copytree(get_benchmark("flores-en-xx").sample_root, tmp_path / "a")
    shutil.copytree(get_benchmark("flores-en-xx").sample_root, tmp_path / "b")
    benchmark_source_set(name="flores200", path=str(tmp_path / "a"))
    benchmark_source_set(name="flores-xx-en", path=str(tmp_path / "b"))
    run = evaluation_run_create(base_model=plain_base, benchmarks=["flores-en-xx", "flores-xx-en"], enqueue=False)
    assert run.sources == {"flores-en-xx": str(tmp_path / "a"), "flores-xx-en": str(tmp_path / "b")}
    with pytest.raises(InvalidInput, match="not a folder"):
        benchmark_source_set(name="xlsum", path=str(tmp_path / "nowhere"))
    with pytest.raises(InvalidInput, match="unknown benchmark or dataset"):
        benchmark_source_set(name="mmlu", path=str(tmp_path))


def test_a_dpo_version_merges_its_sft_parent_first(versions):
    _, sft, dpo = versions
    assert adapter_chain(dpo) == [sft, dpo]
    run = evaluation_run_create(model_version=dpo, benchmarks=["xcopa"], enqueue=False)
    assert run.base_model == dpo.base_model
    assert model_spec(run).adapters == (sft.adapter_path, dpo.adapter_path)
    assert run.model_label == "plain-dpo-run1"


def test_a_version_whose_adapter_is_gone_is_refused(versions):
    _, sft, dpo = versions
    (Path(sft.adapter_path) / "adapter_config.json").unlink()
    with pytest.raises(InvalidInput, match="the adapter of plain-sft-run1 is missing"):
        evaluation_run_create(model_version=dpo, benchmarks=["xcopa"], enqueue=False)


@pytest.mark.django_db(transaction=True)
def test_it_queues_the_task_after_commit(plain_base):
    from django_tasks_db.models import DBTaskResult

    run = evaluation_run_create(base_model=plain_base, benchmarks=["xcopa"])
    task = DBTaskResult.objects.get()
    assert (task.queue_name, task.args_kwargs["args"]) == ("evaluation", [run.pk])


def test_retry_and_cancel_follow_the_status(plain_base):
    run = evaluation_run_create(base_model=plain_base, benchmarks=["xcopa"], enqueue=False)
    with pytest.raises(Conflict, match="only failed or cancelled runs can be retried"):
        evaluation_run_retry(run=run)
    run = evaluation_run_cancel(run=run)
    assert run.status == JobStatus.CANCELLED and run.error == "cancelled before it started"
    with pytest.raises(Conflict, match="nothing to cancel"):
        evaluation_run_cancel(run=run)
    assert evaluation_run_retry(run=run).status == JobStatus.QUEUED
    EvaluationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    assert evaluation_run_cancel(run=run).cancel_requested


def test_a_run_without_heartbeat_is_failed_with_the_reason(plain_base):
    run = evaluation_run_create(base_model=plain_base, benchmarks=["xcopa"], enqueue=False)
    old = timezone.now() - timedelta(minutes=11)
    EvaluationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=old, worker="gpu1:42")
    assert evaluation_runs_fail_stale() == 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "gpu1:42 stopped responding" in run.error and "Retry continues" in run.error
    assert evaluation_runs_fail_stale() == 0


def test_after_training_it_queues_each_version_and_what_it_was_trained_from(versions):
    run, sft, dpo = versions
    queued = evaluation_after_training(run, enqueue=False)
    subjects = [(r.model_version, r.base_model) for r in queued]
    assert subjects == [(sft, sft.base_model), (None, sft.base_model), (dpo, dpo.base_model)]
    for evaluation in queued:
        assert evaluation.benchmarks == benchmark_names()
        assert evaluation.trigger == "after_training" and evaluation.training_run == run
        assert evaluation.sources == {name: str(get_benchmark(name).sample_root) for name in benchmark_names()}
    # Called again (a retried training run): nothing new, the same runs cover it.
    again = evaluation_after_training(run, enqueue=False)
    assert [r.pk for r in again] == [r.pk for r in queued]
    assert EvaluationRun.objects.count() == 3


def test_after_training_a_broken_version_is_left_out_not_raised(versions, caplog):
    run, sft, dpo = versions
    (Path(dpo.adapter_path) / "adapter_config.json").unlink()
    queued = evaluation_after_training(run, enqueue=False)
    assert [r.model_version for r in queued] == [sft, None]
    assert "could not queue the evaluation of plain-dpo-run1" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_queued_evaluation(tiny_base):
    run = evaluation_run_create(base_model=tiny_base, benchmarks=["pawsx"], languages=["en", "ja"], limit=2)
    call_command("db_worker", "--batch", "--queue-name", "evaluation", stdout=io.StringIO(), stderr=io.StringIO())
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert sorted(run.results.values_list("language", "metric", "n")) == [("en", "accuracy", 2),
                                                                           ("ja", "accuracy", 2)]
