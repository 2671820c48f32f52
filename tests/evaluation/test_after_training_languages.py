"""The evaluation queued after training covers the languages the run was trained on (issue 12, point 6): the prompt
and response languages of its export, not whatever the sample sets hold; the trained languages without data are
stored on the run and shown, and a run is queued even when none has data."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from annotation.models import Export, JobStatus
from annotation.services.campaigns import campaign_create
from evaluation.benchmarks import benchmark_names, get_benchmark
from evaluation.models import EvaluationResult, EvaluationRun
from evaluation.services import benchmark_source_set, evaluation_after_training, evaluation_run_execute
from training.models import ModelVersion, TrainingRun


def adapter_folder(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return str(folder)


@pytest.fixture
def trained_on(plain_base, tmp_path):
    """A succeeded DPO run on an export of the given (prompt, response) language pairs, with its version."""

    def make(*pairs: tuple[str, str]) -> TrainingRun:
        campaign = campaign_create(name=f"campaign {pairs}", created_by=None)
        export = Export.objects.create(campaign=campaign, status=JobStatus.SUCCEEDED, language_pairs=[
            {"prompt_language": prompt, "response_language": response, "items": 3, "rows": 6, "train": 5,
             "test": 1, "agreement": None} for prompt, response in pairs])
        run = TrainingRun.objects.create(kind="dpo", base_model=plain_base, export=export, status=JobStatus.SUCCEEDED)
        ModelVersion.objects.create(name=f"plain-dpo-run{run.pk}", base_model=plain_base, run=run, kind="dpo",
                                    export=export, adapter_path=adapter_folder(tmp_path, f"dpo-{run.pk}"))
        return run

    return make


def test_a_hindi_to_urdu_export_is_evaluated_on_hindi_and_urdu(trained_on):
    # Before: every language of the sample sets (ar, en, fr, it, ja, sw, ta, zh-Hans) and neither hi nor ur.
    queued = evaluation_after_training(trained_on(("hi", "ur")), enqueue=False)
    assert len(queued) == 2, "the version and its bare base model"
    for evaluation in queued:
        assert evaluation.languages == ["hi", "ur"]
        assert evaluation.languages_without_data == []
        assert evaluation.benchmarks == benchmark_names()
        assert evaluation.progress_total == 6, "the Belebele samples: 3 questions in Hindi, 3 in Urdu"


def test_trained_languages_without_data_are_stored_and_the_run_still_queued(trained_on):
    # Amharic and Yoruba are in no sample set: the run is queued all the same, so that the gap shows.
    [version_run, base_run] = evaluation_after_training(trained_on(("yo", "am"), ("am", "yo")), enqueue=False)
    assert version_run.languages == ["am", "yo"] == base_run.languages
    assert version_run.languages_without_data == ["am", "yo"]
    assert version_run.progress_total == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_without_data_finishes_with_every_language_skipped_and_says_so(trained_on, client, annotator):
    [evaluation, _base] = evaluation_after_training(trained_on(("yo", "am")), enqueue=False)
    finished = evaluation_run_execute(run_id=evaluation.pk)  # no example: the model is never loaded
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    skipped = EvaluationResult.objects.filter(run=finished)
    assert skipped.count() == 2 * len(benchmark_names()) and all(row.skipped for row in skipped)
    client.force_login(annotator)
    page = client.get(reverse("evaluation:run", args=[finished.pk])).content.decode()
    shown = page[page.index('id="languages-without-data"'):].split("</dd>")[0]
    assert "am, yo" in shown and "no result" in shown
    detail = client.get(f"/api/v1/evaluation-runs/{finished.pk}/").json()
    assert detail["languages_without_data"] == ["am", "yo"]


def test_full_data_of_a_trained_language_is_used_where_it_is_configured(trained_on, tmp_path):
    folder = tmp_path / "belebele"
    folder.mkdir()
    (folder / "amh_Ethi.jsonl").write_bytes((get_benchmark("belebele").sample_root / "swh_Latn.jsonl").read_bytes())
    benchmark_source_set(name="belebele", path=str(folder))
    [evaluation, _base] = evaluation_after_training(trained_on(("yo", "am")), enqueue=False)
    assert evaluation.sources["belebele"] == str(folder)
    assert evaluation.sources["xcopa"] == str(get_benchmark("xcopa").sample_root), "no folder: the samples"
    assert evaluation.languages_without_data == ["yo"]
    assert evaluation.progress_total == 3


def test_the_same_languages_again_reuse_the_runs_and_other_languages_do_not(trained_on):
    run = trained_on(("hi", "ur"))
    first = evaluation_after_training(run, enqueue=False)
    assert [e.pk for e in evaluation_after_training(run, enqueue=False)] == [e.pk for e in first]
    other = evaluation_after_training(trained_on(("sw", "ta")), enqueue=False)
    assert other[1].base_model == first[1].base_model and other[1].pk != first[1].pk, \
        "the bare base model is evaluated again on the new languages"
    assert EvaluationRun.objects.count() == 4


def test_a_run_trained_on_an_uploaded_file_is_evaluated_on_the_samples_as_before(plain_base, tmp_path):
    run = TrainingRun.objects.create(kind="sft", base_model=plain_base, sft_file=str(tmp_path / "sft.jsonl"),
                                     status=JobStatus.SUCCEEDED)
    ModelVersion.objects.create(name="plain-sft-upload", base_model=plain_base, run=run, kind="sft",
                                adapter_path=adapter_folder(tmp_path, "sft"))
    [evaluation, _base] = evaluation_after_training(run, enqueue=False)
    assert evaluation.languages == [] and evaluation.languages_without_data == []
    assert evaluation.sources == {name: str(get_benchmark(name).sample_root) for name in benchmark_names()}
