"""The seq2seq translator: the tiny NLLB-style model (M2M100 architecture, FLORES-200 language tokens, random
weights, built locally) registered by its folder, refused for languages its tokenizer has no token for before
anything is queued, and run end to end in a job; the backend alone: forced first token, right padding, batches."""

from __future__ import annotations

import pytest

from annotation.models import JobStatus
from crossfeed.errors import InvalidInput
from translation.backends.seq2seq import Seq2SeqBackend, TranslationRequest, known_languages
from translation.models import Translation, TranslationJob
from translation.services.execution import translation_job_execute
from translation.services.jobs import translation_job_create
from translation.services.translators import translator_create

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def seq2seq(db, tiny_seq2seq_dir):
    return translator_create(name="tiny-mt", kind="seq2seq", path=str(tiny_seq2seq_dir), max_new_tokens=8)


def test_the_backend_forces_the_target_token_and_answers_each_request(tiny_seq2seq_dir):
    assert known_languages(str(tiny_seq2seq_dir)) == ["arb_Arab", "eng_Latn", "swh_Latn", "zho_Hans"]
    backend = Seq2SeqBackend(str(tiny_seq2seq_dir), label="tiny-mt", batch_size=2, max_new_tokens=6, device="cpu")
    seen: list = []
    requests = [TranslationRequest("a", "Explain why the sky is blue.", "eng_Latn", "swh_Latn"),
                TranslationRequest("b", "Hi", "eng_Latn", "swh_Latn"),
                TranslationRequest("c", "Add two numbers, please.", "eng_Latn", "arb_Arab"),
                TranslationRequest("d", "Hi", "eng_Latn", "tam_Taml")]
    throughput = backend.translate(requests, on_outputs=lambda batch: seen.append(batch))
    by_key = {output.key: output for batch in seen for output in batch}
    assert set(by_key) == {"a", "b", "c", "d"}
    assert "no language token" in by_key["d"].error and not by_key["a"].error
    assert all(0 < by_key[key].new_tokens <= 6 for key in "abc")
    assert throughput.prompts == 3 and len(seen) == 3  # one batch per target language, at most 2 each
    # The same text alone and beside a longer one (right-padded) translates the same: padding is masked.
    alone: list = []
    backend.translate([requests[1]], on_outputs=alone.extend)
    assert alone[0].text == by_key["b"].text


def test_registering_records_the_languages_and_refuses_a_folder_without_language_tokens(seq2seq, tiny_model_dir):
    assert seq2seq.languages == ["arb_Arab", "eng_Latn", "swh_Latn", "zho_Hans"]
    with pytest.raises(InvalidInput, match="no FLORES-200 language tokens") as caught:
        translator_create(name="not-mt", kind="seq2seq", path=str(tiny_model_dir))
    assert caught.value.field == "path"
    with pytest.raises(InvalidInput, match="without a download"):
        translator_create(name="hub", kind="seq2seq", path="facebook/nllb-200-distilled-600M-not-cached")


def test_a_language_the_model_does_not_know_is_refused_before_queueing(seq2seq, instruction_set):
    with pytest.raises(InvalidInput, match=r"does not know ta \(tam_Taml\)") as caught:
        translation_job_create(instruction_set=instruction_set, languages=["sw", "ta"], translators=[seq2seq.id],
                               enqueue=False)
    assert caught.value.field == "translators"
    assert not TranslationJob.objects.exists()


def test_the_tiny_seq2seq_translator_runs_a_job_end_to_end(seq2seq, instruction_set):
    job = translation_job_create(instruction_set=instruction_set, languages=["sw", "ar", "zh-Hans"],
                                 translators=[seq2seq.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress_done == job.progress_total == 24 and job.failure_count == 0
    assert Translation.objects.filter(job=job).count() == 6
    for code in ("sw", "ar", "zh-Hans"):
        report = job.per_language[code]
        # A random model's noise: every row scored, and marked rather than chosen when it fails the checks.
        assert report["rows"] == 2 and sum(report["chosen_by"].values()) + report["not_acceptable"] == 2
    assert job.throughput["tiny-mt"]["prompts"] == 24
