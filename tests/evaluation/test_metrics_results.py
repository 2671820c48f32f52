"""Metric settings and the off-target rate's three counts, from scoring to the stored result, the dashboards, the
API and the CSV; spBLEU with the local FLORES-200 model or "spBLEU: model missing"; `manage.py fetch_spbleu_model`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.models import JobStatus
from evaluation.benchmarks import get_benchmark
from evaluation.models import EvaluationResult
from evaluation.scoring import SPBLEU_MISSING, score, spbleu_model_path
from evaluation.selectors import NOT_MEASURABLE_LABEL
from evaluation.services import evaluation_run_create, evaluation_run_execute

ENGLISH = "The market in the village opens early in the morning."
SWAHILI = "Soko la kijiji hufunguliwa mapema asubuhi."


def _translation_record(output: str, expected: str = "sw", reference: str = SWAHILI) -> dict:
    return {"output": output, "reference": reference, "expected_language": expected}


@pytest.fixture
def spm_model(tmp_path):
    import sentencepiece

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([SWAHILI, ENGLISH, "私は猫が好きです"] * 40), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "flores"),
                                             vocab_size=60, character_coverage=1.0, hard_vocab_limit=False)
    return tmp_path / "flores.model"


def test_translation_scores_carry_signatures_counts_and_a_missing_spbleu():
    records = [_translation_record(SWAHILI), _translation_record(ENGLISH), _translation_record(""),
               _translation_record("Soko la kijiji hufunguliwa asubuhi.")]
    values = {value.metric: value for value in score(get_benchmark("flores-en-xx"), records)}
    assert values["bleu"].settings["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert values["chrf++"].settings["signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no")
    spbleu = values["spbleu"]
    assert spbleu.value is None and spbleu.note.startswith(SPBLEU_MISSING)
    rate = values["off_target_rate"]
    # 1 English answer off-target, 2 Swahili on-target, 1 empty not measurable: 1 / 3, n = 3 measured.
    assert rate.counts == {"on_target": 2, "off_target": 1, "not_measurable": 1}
    assert rate.value == pytest.approx(100 / 3) and rate.n == 3
    assert rate.settings["denominator"] == "measured (on + off target)" and rate.settings["min_letters"] == 3


def test_spbleu_with_the_local_model(spm_model):
    records = [_translation_record(SWAHILI), _translation_record("Soko la kijiji hufunguliwa asubuhi.")]
    values = {value.metric: value for value in score(get_benchmark("flores-en-xx"), records,
                                                     spm_model_path=spm_model)}
    assert 0 < values["spbleu"].value <= 100 and not values["spbleu"].note
    assert "tok:flores200" in values["spbleu"].settings["signature"]


def test_japanese_and_korean_translation_use_mecab():
    ja = score(get_benchmark("flores-en-xx"), [_translation_record("私は猫が好きです", "ja", "私は犬が好きです")])
    assert "tok:ja-mecab-" in ja[0].settings["signature"] and ja[0].value == pytest.approx(37.992, abs=1e-3)
    ko = score(get_benchmark("flores-en-xx"),
               [_translation_record("저는 사과를 좋아합니다", "ko", "저는 바나나를 좋아합니다")])
    assert "tok:ko-mecab-" in ko[0].settings["signature"] and ko[0].value == pytest.approx(30.214, abs=1e-3)


def test_summaries_are_scored_as_xlsum_does():
    records = [{"output": "लड़के स्कूल जाते हैं", "reference": "लड़का स्कूल जाता है", "expected_language": "hi"}]
    rouge = score(get_benchmark("xlsum"), records)[0]
    assert rouge.metric == "rouge_l" and rouge.value == pytest.approx(75.0)  # stemmed; 25.0 without
    assert rouge.settings["xlsum_language"] == "hindi"


def test_spbleu_model_path_is_the_configured_file_or_sacrebleus_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SACREBLEU", str(tmp_path / "sacrebleu"))
    assert spbleu_model_path(tmp_path / "missing") is None
    cached = tmp_path / "sacrebleu" / "models" / "flores200sacrebleuspm"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert spbleu_model_path(tmp_path / "missing") == cached
    configured = tmp_path / "mine"
    configured.write_bytes(b"x")
    assert spbleu_model_path(configured) == configured


def test_a_run_stores_settings_and_counts(tiny_base, admin_user, settings, tmp_path):
    settings.SPBLEU_MODEL = tmp_path / "no-model-here"
    run = evaluation_run_create(base_model=tiny_base, benchmarks=["flores-en-xx", "xlsum"], languages=["ja", "sw"],
                                limit=2, max_new_tokens=8, batch_size=4, created_by=admin_user, enqueue=False)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    bleu = EvaluationResult.objects.get(run=run, benchmark="flores-en-xx", language="ja", metric="bleu")
    assert "tok:ja-mecab-" in bleu.settings["signature"]
    spbleu = EvaluationResult.objects.get(run=run, benchmark="flores-en-xx", language="sw", metric="spbleu")
    assert spbleu.value is None and spbleu.reason.startswith(SPBLEU_MISSING) and not spbleu.skipped
    rouge = EvaluationResult.objects.get(run=run, benchmark="xlsum", language="ja", metric="rouge_l")
    assert rouge.settings["segmenter"].startswith("fugashi")
    for rate in EvaluationResult.objects.filter(run=run, metric="off_target_rate"):
        assert rate.on_target + rate.off_target + rate.not_measurable == 2
        assert rate.n == rate.on_target + rate.off_target
    assert not EvaluationResult.objects.filter(run=run, metric="bleu", on_target__isnull=False).exists()


@pytest.fixture
def client_as(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def counted_run(finished_run):
    run = finished_run(results=[("flores-en-xx", "sw", "bleu", 12.5, 10), ("flores-en-xx", "sw", "off_target_rate",
                                                                            25.0, 8)])
    EvaluationResult.objects.filter(run=run, metric="off_target_rate").update(
        on_target=6, off_target=2, not_measurable=2, settings={"detector": "py3langid"})
    EvaluationResult.objects.filter(run=run, metric="bleu").update(
        settings={"signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", "tokenizer": "13a"})
    EvaluationResult.objects.create(run=run, benchmark="flores-en-xx", language="sw", metric="spbleu", value=None,
                                    n=0, reason="spBLEU: model missing (manage.py fetch_spbleu_model)")
    return run


def test_the_run_page_shows_the_not_measurable_share_and_how_numbers_were_computed(client_as, annotator,
                                                                                    counted_run):
    response = client_as(annotator).get(reverse("evaluation:run", args=[counted_run.id]))
    page = response.content.decode()
    assert "not measurable: 2 of 10 (20.0 %)" in page
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0" in page
    assert "spBLEU: model missing" in page
    [table] = response.context["tables"]
    assert [metric["name"] for metric in table["metrics"]] == ["bleu", "spbleu", "off_target_rate"]
    chart = {dataset["label"]: dataset["data"] for dataset in table["chart"]["datasets"]}
    assert chart["off_target_rate"] == [25.0] and chart[NOT_MEASURABLE_LABEL] == [20.0]


def test_the_comparison_shows_the_not_measurable_share_of_both_runs(client_as, annotator, finished_run, counted_run):
    other = finished_run(results=[("flores-en-xx", "sw", "off_target_rate", 50.0, 4)])
    EvaluationResult.objects.filter(run=other).update(on_target=2, off_target=2, not_measurable=6)
    response = client_as(annotator).get(reverse("evaluation:compare"),
                                        {"a": other.id, "b": counted_run.id, "metrics": "all"})
    assert response.status_code == 200
    assert "not measurable: 60.0 % → 20.0 %" in response.content.decode()


def test_the_api_and_the_csv_have_settings_and_counts(api, annotator, client_as, counted_run):
    body = api(annotator).get(f"/api/v1/evaluation-runs/{counted_run.id}/").json()
    rows = {row["metric"]: row for row in body["results"]}
    assert {"value": 25.0, "n": 8, "on_target": 6, "off_target": 2, "not_measurable": 2}.items() <= \
        rows["off_target_rate"].items()
    assert rows["bleu"]["settings"]["signature"].startswith("nrefs:1") and rows["bleu"]["on_target"] is None
    assert rows["spbleu"]["value"] is None and rows["spbleu"]["note"].startswith("spBLEU: model missing")
    response = client_as(annotator).get(reverse("evaluation:results_csv", args=[counted_run.id]))
    lines = {row["metric"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert (lines["off_target_rate"]["on_target"], lines["off_target_rate"]["not_measurable"]) == ("6", "2")
    assert json.loads(lines["bleu"]["settings"])["tokenizer"] == "13a"


def test_fetch_spbleu_model_copies_a_checked_model(tmp_path, settings, spm_model):
    settings.SPBLEU_MODEL = tmp_path / "models" / "flores200sacrebleuspm"
    call_command("fetch_spbleu_model", "--from", str(spm_model), stdout=io.StringIO())
    assert settings.SPBLEU_MODEL.read_bytes() == spm_model.read_bytes()
    assert spbleu_model_path(settings.SPBLEU_MODEL) == settings.SPBLEU_MODEL


def test_fetch_spbleu_model_downloads_from_a_url(tmp_path, settings, spm_model):
    # A file:// URL exercises the download path without a network.
    settings.SPBLEU_MODEL = tmp_path / "m" / "flores200sacrebleuspm"
    call_command("fetch_spbleu_model", "--url", spm_model.as_uri(), stdout=io.StringIO())
    assert settings.SPBLEU_MODEL.read_bytes() == spm_model.read_bytes()


def test_fetch_spbleu_model_refuses_a_file_that_is_not_a_model(tmp_path, settings):
    settings.SPBLEU_MODEL = tmp_path / "flores200sacrebleuspm"
    bogus = tmp_path / "page.html"
    bogus.write_text("<html>not a model</html>", encoding="utf-8")
    with pytest.raises(CommandError, match="not a SentencePiece model"):
        call_command("fetch_spbleu_model", "--from", str(bogus))
    assert not settings.SPBLEU_MODEL.exists()


def test_fetch_spbleu_model_says_what_to_do_without_internet(tmp_path, settings):
    settings.SPBLEU_MODEL = tmp_path / "flores200sacrebleuspm"
    with pytest.raises(CommandError, match="needs internet"):
        call_command("fetch_spbleu_model", "--url", (tmp_path / "nowhere").as_uri())
