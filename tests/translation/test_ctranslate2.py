"""The seq2seq translator on CTranslate2: the tiny NLLB-style model converted here (ctranslate2's
TransformersConverter, its tokenizer copied beside model.bin), registered by that folder with the languages of the
copied tokenizer, translating token for token as transformers' greedy generate does on the same model with the same
length limit, refusing an unknown language before queueing, and running a job end to end with the same results as
the transformers folder. Nothing is mocked: both runtimes run the same weights on the CPU."""

from __future__ import annotations

import shutil

import pytest

from annotation.models import JobStatus
from crossfeed.errors import InvalidInput
from translation.backends.seq2seq import (
    Seq2SeqBackend,
    TranslationRequest,
    convert_to_ctranslate2,
    known_languages,
    language_tokens,
    load_tokenizer,
)
from translation.models import Translation, TranslationJob
from translation.services.execution import translation_job_execute
from translation.services.jobs import translation_job_create
from translation.services.translators import translator_create

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LANGUAGES = ["arb_Arab", "eng_Latn", "swh_Latn", "zho_Hans"]
REQUESTS = [TranslationRequest("a", "Explain why the sky is blue.", "eng_Latn", "swh_Latn"),
            TranslationRequest("b", "Hi", "eng_Latn", "swh_Latn"),
            TranslationRequest("c", "Add two numbers, please.", "eng_Latn", "arb_Arab"),
            TranslationRequest("d", "Write a haiku about rain and the sea.", "eng_Latn", "zho_Hans"),
            TranslationRequest("e", "x", "eng_Latn", "zho_Hans"),
            TranslationRequest("f", "Hi", "eng_Latn", "tam_Taml")]


@pytest.fixture(scope="session")
def ct2_dir(tiny_seq2seq_dir, tmp_path_factory):
    return convert_to_ctranslate2(tiny_seq2seq_dir, tmp_path_factory.mktemp("tiny-mt-ct2") / "ct2")


@pytest.fixture
def ct2_translator(db, ct2_dir):
    return translator_create(name="tiny-mt-ct2", kind="seq2seq", path=str(ct2_dir), max_new_tokens=8)


def _translate(path, requests, max_new_tokens):
    backend = Seq2SeqBackend(str(path), label="tiny", batch_size=2, max_new_tokens=max_new_tokens, device="cpu")
    outputs: list = []
    backend.translate(requests, on_outputs=outputs.extend)
    return backend, {output.key: output for output in outputs}


def test_the_converted_folder_holds_the_tokenizer_and_the_same_languages(tiny_seq2seq_dir, ct2_dir):
    assert (ct2_dir / "model.bin").is_file() and (ct2_dir / "tokenizer.json").is_file()
    assert known_languages(str(ct2_dir)) == known_languages(str(tiny_seq2seq_dir)) == LANGUAGES
    backend, _ = _translate(ct2_dir, [], 4)
    assert backend._ct2 is not None and backend._model is None  # the CTranslate2 runtime, not transformers


@pytest.mark.parametrize("max_new_tokens", [3, 12])
def test_ctranslate2_answers_as_the_transformers_backend(tiny_seq2seq_dir, ct2_dir, max_new_tokens):
    """Batches of 2 (right padding in transformers), three target languages, one unknown language."""
    _, expected = _translate(tiny_seq2seq_dir, REQUESTS, max_new_tokens)
    _, got = _translate(ct2_dir, REQUESTS, max_new_tokens)
    assert set(got) == set(expected) == set("abcdef")
    for key in "abcde":
        assert (got[key].text, got[key].new_tokens, got[key].truncated, got[key].error) == (
            expected[key].text, expected[key].new_tokens, expected[key].truncated, expected[key].error), key
        assert got[key].new_tokens == max_new_tokens and got[key].truncated  # random weights never say </s>
    assert "no language token" in got["f"].error and got["f"].error == expected["f"].error
    # The comparison means something: the tiny model's outputs differ with the source.
    assert len({got[key].text for key in "ab"}) == 2


def test_the_token_ids_are_those_of_greedy_generate(tiny_seq2seq_dir, ct2_dir):
    """Both runtimes driven directly: generate(do_sample=False, num_beams=1, max_new_tokens=N, forced first token)
    and translate_batch(beam_size=1, max_decoding_length=N, target_prefix=[code]) give the same ids."""
    import ctranslate2
    import torch
    from transformers import AutoModelForSeq2SeqLM

    tokenizer = load_tokenizer(str(tiny_seq2seq_dir))
    codes = language_tokens(tokenizer)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq_dir, local_files_only=True).eval()
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    for request in REQUESTS[:5]:
        source = [codes[request.source], *tokenizer(request.text, add_special_tokens=False)["input_ids"],
                  tokenizer.eos_token_id]
        with torch.inference_mode():
            generated = model.generate(input_ids=torch.tensor([source]), forced_bos_token_id=codes[request.target],
                                       max_new_tokens=10, do_sample=False, num_beams=1)[0].tolist()
        result = translator.translate_batch([tokenizer.convert_ids_to_tokens(source)],
                                            target_prefix=[[request.target]], beam_size=1, max_decoding_length=10,
                                            return_end_token=True)[0]
        # generate's sequence starts with the decoder start token (</s>), which CTranslate2 does not return.
        assert generated[1:] == tokenizer.convert_tokens_to_ids(result.hypotheses[0]), request.key


def test_a_translation_that_ends_ends_the_same(tiny_seq2seq_dir, tmp_path):
    """The tiny model made to say </s> at once (its decoder's last norm outputs the </s> embedding): both runtimes
    stop after the target's code, with an empty text that is not truncated."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    ending = tmp_path / "ending"
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq_dir, local_files_only=True)
    eos = model.config.eos_token_id
    with torch.no_grad():
        norm = model.model.decoder.layer_norm
        norm.weight.zero_()
        norm.bias.copy_(model.model.shared.weight[eos] * 10)
    model.save_pretrained(ending)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_seq2seq_dir / name, ending / name)
    ct2_ending = convert_to_ctranslate2(ending, tmp_path / "ending-ct2")
    _, expected = _translate(ending, REQUESTS[:3], 8)
    _, got = _translate(ct2_ending, REQUESTS[:3], 8)
    for key in "abc":
        assert (expected[key].text, expected[key].new_tokens, expected[key].truncated) == ("", 1, False)
        assert (got[key].text, got[key].new_tokens, got[key].truncated) == ("", 1, False)


def test_registering_a_ctranslate2_folder_reads_the_languages_of_its_tokenizer(ct2_translator, ct2_dir, tmp_path):
    assert ct2_translator.languages == LANGUAGES
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.bin", "config.json", "shared_vocabulary.json"):
        shutil.copy(ct2_dir / name, bare / name)
    with pytest.raises(InvalidInput, match="has no tokenizer") as caught:
        translator_create(name="bare-ct2", kind="seq2seq", path=str(bare))
    assert caught.value.field == "path"


def test_a_language_the_ctranslate2_model_does_not_know_is_refused_before_queueing(ct2_translator, instruction_set):
    with pytest.raises(InvalidInput, match=r"does not know ta \(tam_Taml\)") as caught:
        translation_job_create(instruction_set=instruction_set, languages=["sw", "ta"],
                               translators=[ct2_translator.id], enqueue=False)
    assert caught.value.field == "translators"
    assert not TranslationJob.objects.exists()


def test_a_job_on_ctranslate2_gives_the_transformers_jobs_translations(ct2_translator, instruction_set,
                                                                       tiny_seq2seq_dir):
    transformers_translator = translator_create(name="tiny-mt", kind="seq2seq", path=str(tiny_seq2seq_dir),
                                                max_new_tokens=8)
    results = {}
    for translator in (ct2_translator, transformers_translator):
        job = translation_job_create(instruction_set=instruction_set, languages=["sw", "ar", "zh-Hans"],
                                     translators=[translator.id], enqueue=False)
        job = translation_job_execute(job_id=job.id)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.progress_done == job.progress_total == 24 and job.failure_count == 0
        assert job.throughput[translator.name]["prompts"] == 24
        results[translator.name] = {(t.row_id, t.language_id): (t.fields, t.quality, t.chosen, t.flags)
                                    for t in Translation.objects.filter(job=job)}
    assert len(results["tiny-mt-ct2"]) == 6
    assert results["tiny-mt-ct2"] == results["tiny-mt"]
