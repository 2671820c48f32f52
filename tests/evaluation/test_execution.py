"""Running evaluations on the tiny model through the admin's service path (create, then execute): results per
language, skipped languages, outputs kept across a crash, Retry continuing after them, cancel."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from annotation.models import JobStatus
from evaluation import inference
from evaluation.models import EvaluationResult, EvaluationRun
from evaluation.services import evaluation_run_create, evaluation_run_execute, evaluation_run_retry
from evaluation.services import execution as execution_module

ALL = ["flores-en-xx", "flores-xx-en", "xlsum", "pawsx", "xcopa", "open-ended"]
LANGUAGES = ["sw", "ta", "ar", "zh-Hans", "ja", "en"]


def lines_of(run: EvaluationRun) -> list[dict]:
    return [json.loads(line) for line in Path(run.outputs_path).read_text(encoding="utf-8").splitlines()]


def results_of(run: EvaluationRun) -> dict[tuple[str, str, str], tuple[float | None, int]]:
    return {(r.benchmark, r.language, r.metric): (r.value, r.n) for r in run.results.filter(skipped=False)}


def test_an_evaluation_on_the_sample_sets_gives_results_per_language_and_skips(tiny_base, admin_user):
    run = evaluation_run_create(base_model=tiny_base, benchmarks=ALL, languages=LANGUAGES, limit=2,
                                max_new_tokens=8, batch_size=4, created_by=admin_user, enqueue=False)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.progress_done == run.progress_total == len(lines_of(run))
    assert run.tokens_per_second and run.tokens_per_second > 0
    assert run.attempts == 1 and run.eta_seconds is None

    results = results_of(run)
    metrics = Counter((benchmark, metric) for benchmark, _, metric in results)
    # FLORES has sw ta ar zh ja (en is the pivot, so en is skipped); XL-Sum all six; PAWS-X en ja zh; XCOPA sw ta zh;
    # open-ended all six.
    assert metrics[("flores-en-xx", "bleu")] == metrics[("flores-xx-en", "chrf++")] == 5
    assert metrics[("xlsum", "rouge_l")] == 6 and metrics[("xlsum", "off_target_rate")] == 6
    assert metrics[("pawsx", "accuracy")] == 3 and metrics[("xcopa", "accuracy")] == 3
    assert metrics[("open-ended", "off_target_rate")] == 6 and metrics[("open-ended", "mean_length")] == 6
    for (_, _, metric), (value, n) in results.items():
        assert value is None or 0 <= value <= 100 or metric == "mean_length"
        assert n <= 2
    assert results[("pawsx", "ja", "accuracy")][1] == 2

    skipped = {(r.benchmark, r.language): r.reason for r in run.results.filter(skipped=True)}
    assert skipped[("pawsx", "sw")] == "pawsx has no sw data"
    assert {("pawsx", "ta"), ("pawsx", "ar"), ("xcopa", "ar"), ("xcopa", "ja"), ("xcopa", "en"),
            ("flores-en-xx", "en")} <= set(skipped)
    assert not run.results.filter(skipped=True).exclude(value=None).exists(), "a skipped language is not a zero"

    records = lines_of(run)
    translation = next(r for r in records if r["benchmark"] == "flores-xx-en" and r["language"] == "sw")
    assert translation["expected_language"] == "en" and "off_target" in translation
    assert set(translation) >= {"input", "reference", "output", "new_tokens"}
    choice = next(r for r in records if r["benchmark"] == "xcopa")
    assert choice["prediction"] in (0, 1) and len(choice["scores"]) == 2
    assert choice["correct"] == (choice["prediction"] == choice["label"])


class Crash(RuntimeError):
    pass


def crash_after(monkeypatch, batches: int) -> list[int]:
    """Make generation die after `batches` batches have been saved; returns the prompt counts of each call."""
    calls: list[int] = []

    def failing(loaded, prompts, *, on_batch=None, **kwargs):
        calls.append(len(prompts))
        seen = []

        def counting(indices, generations):
            on_batch(indices, generations)
            seen.append(indices)
            if len(seen) == batches:
                raise Crash("CUDA out of memory (simulated)")

        return inference.generate(loaded, prompts, on_batch=counting, **kwargs)

    monkeypatch.setattr(execution_module, "generate", failing)
    return calls


def test_a_crash_keeps_the_outputs_and_retry_continues_after_them(tiny_base, monkeypatch):
    arguments = {"base_model": tiny_base, "benchmarks": ["flores-en-xx", "open-ended"], "languages": ["sw", "ja"],
                 "max_new_tokens": 6, "batch_size": 2, "enqueue": False}
    clean = evaluation_run_execute(run_id=evaluation_run_create(**arguments).pk)
    assert clean.status == JobStatus.SUCCEEDED

    run = evaluation_run_create(**arguments)
    calls = crash_after(monkeypatch, batches=2)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED
    assert "Crash: CUDA out of memory (simulated)" in run.error and "Retry continues" in run.error
    assert len(lines_of(run)) == 4, "two batches of two were saved before the crash"
    assert calls == [16], "one generation call for every benchmark and language of the run"

    # A worker killed mid-write leaves half a line; the next attempt cuts it off.
    with Path(run.outputs_path).open("a", encoding="utf-8") as handle:
        handle.write('{"benchmark": "flores-en-xx", "language": "sw", "id": "5", "inp')
    monkeypatch.setattr(execution_module, "generate", inference.generate)
    calls.clear()
    evaluation_run_retry(run=run)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    records = lines_of(run)
    keys = [(r["benchmark"], r["language"], r["id"]) for r in records]
    assert len(keys) == len(set(keys)) == run.progress_total == 16, "nothing twice, nothing missing"
    # Greedy decoding is deterministic: a run in two attempts scores exactly like a run in one.
    assert results_of(run) == results_of(clean)


def test_a_cancel_request_stops_the_run_after_its_batch(tiny_base, monkeypatch):
    run = evaluation_run_create(base_model=tiny_base, benchmarks=["open-ended"], languages=["sw", "ta"],
                                max_new_tokens=4, batch_size=1, enqueue=False)
    monkeypatch.setattr(execution_module, "HEARTBEAT_SECONDS", 0.0)

    def cancel_when_loaded(spec, **kwargs):
        EvaluationRun.objects.filter(pk=run.pk).update(cancel_requested=True)
        return inference.load_model(spec, device="cpu")

    monkeypatch.setattr(execution_module, "load_model", cancel_when_loaded)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.CANCELLED and "Retry continues" in run.error
    assert len(lines_of(run)) == 0, "it stopped at the first heartbeat, before generating"
    monkeypatch.setattr(execution_module, "load_model", inference.load_model)
    evaluation_run_retry(run=run)
    assert evaluation_run_execute(run_id=run.pk).status == JobStatus.SUCCEEDED


def test_a_benchmark_file_broken_after_creation_fails_the_run_with_file_and_line(tiny_base, tmp_path):
    import shutil

    from evaluation.benchmarks import get_benchmark
    from evaluation.services import benchmark_source_set

    root = Path(shutil.copytree(get_benchmark("xcopa").sample_root, tmp_path / "xcopa"))
    benchmark_source_set(name="xcopa", path=str(root))
    run = evaluation_run_create(base_model=tiny_base, benchmarks=["xcopa"], languages=["it"], enqueue=False)
    (root / "it" / "test.it.jsonl").write_text('{"premise": 1}\n', encoding="utf-8")
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.FAILED
    assert 'test.it.jsonl line 1: "premise" must be a non-empty string' in run.error
    assert EvaluationResult.objects.filter(run=run).count() == 0


def test_a_run_that_is_not_queued_is_left_alone(tiny_base):
    run = evaluation_run_create(base_model=tiny_base, benchmarks=["xcopa"], enqueue=False)
    EvaluationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING)
    assert evaluation_run_execute(run_id=run.pk).attempts == 0
