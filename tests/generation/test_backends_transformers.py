"""TransformersBackend on the tiny random model (CPU): batching, sampling, seeds, truncation, stop, out of memory."""

from __future__ import annotations

import pytest
import torch

from evaluation.inference import ModelSpec, encode_prompt, render_prompt
from generation.backends.base import GenerationStopped, Request, SamplingParams
from generation.backends.transformers_backend import ExponentialRace, NucleusFilter, TransformersBackend

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)
SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=5)
# Lengths differ a lot, so a batch of them is padded on the left.
PROMPTS = ["Habari?", "Mji mkuu wa Kenya ni upi? Tafadhali eleza kwa kirefu.", "Vanakkam",
           "Nairobi ni mji mkuu wa Kenya na ni mji mkubwa wenye watu wengi sana.", "Jambo", "Asante sana rafiki"]


def ask(text: str, samples: int = 1) -> Request:
    return Request(key=text, messages=[{"role": "user", "content": text}], samples=samples)


@pytest.fixture
def backend(tiny_model_dir):
    made = TransformersBackend(ModelSpec(str(tiny_model_dir)), label="tiny", batch_size=8, device="cpu")
    yield made
    made.close()


def run(backend, requests, params, **kwargs):
    outputs, calls = [], []

    def collect(batch):
        calls.append(batch)
        outputs.extend(batch)

    throughput = backend.generate(requests, params, on_outputs=collect, **kwargs)
    return {(o.key, o.sample): o for o in outputs}, calls, throughput


def test_batched_greedy_equals_one_at_a_time(backend):
    batched, calls, throughput = run(backend, [ask(p) for p in PROMPTS], GREEDY)
    assert len(calls) == 1  # all six in one left-padded batch
    backend.batch_size = 1
    alone, calls, _ = run(backend, [ask(p) for p in PROMPTS], GREEDY)
    assert len(calls) == len(PROMPTS)
    assert {k: (o.text, o.new_tokens) for k, o in batched.items()} == {k: (o.text, o.new_tokens)
                                                                        for k, o in alone.items()}
    assert all(o.text for o in batched.values())
    assert (throughput.prompts, throughput.outputs) == (6, 6) and throughput.new_tokens == 6 * 12
    assert throughput.tokens_per_second > 0


def test_samples_per_request_and_batch_size_counts_sequences(backend):
    backend.batch_size = 4  # 4 sequences: 2 prompts of 2 samples per batch
    outputs, calls, throughput = run(backend, [ask(p, samples=2) for p in PROMPTS[:3]], SAMPLED)
    assert sorted(outputs) == sorted((p, s) for p in PROMPTS[:3] for s in (0, 1))
    assert [len(batch) for batch in calls] == [4, 2]
    assert (throughput.prompts, throughput.outputs) == (3, 6)
    # Sampling at temperature 1 from a random model: the two samples of a prompt differ.
    assert all(outputs[(p, 0)].text != outputs[(p, 1)].text for p in PROMPTS[:3])


def test_same_seed_same_text_other_seed_other_text(backend):
    requests = [ask(p, samples=2) for p in PROMPTS]
    first, _, _ = run(backend, requests, SAMPLED)
    again, _, _ = run(backend, requests, SAMPLED)
    other, _, _ = run(backend, requests, SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, seed=6))
    assert {k: o.text for k, o in first.items()} == {k: o.text for k, o in again.items()}
    assert {k: o.text for k, o in first.items()} != {k: o.text for k, o in other.items()}


def test_truncated_when_max_new_tokens_ends_it(backend):
    outputs, _, _ = run(backend, [ask("Habari?")], GREEDY)
    assert outputs[("Habari?", 0)].truncated and outputs[("Habari?", 0)].new_tokens == 12
    # Make the third token greedy decoding produces an end of sequence: generation ends there, not truncated.
    loaded = backend.loaded
    ids = torch.tensor([encode_prompt(loaded, render_prompt(loaded, ask("Habari?").messages))])
    produced = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=3, pad_token_id=loaded.tokenizer.pad_token_id)
    third = int(produced[0, -1])
    loaded.model.generation_config.eos_token_id = third
    outputs, _, _ = run(backend, [ask("Habari?")], GREEDY)
    ended = outputs[("Habari?", 0)]
    assert not ended.truncated and ended.new_tokens <= 3


def test_should_stop_cancels_between_batches(backend):
    backend.batch_size = 2
    seen = []
    with pytest.raises(GenerationStopped):
        backend.generate([ask(p) for p in PROMPTS], GREEDY, on_outputs=seen.extend,
                         should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2  # the first batch was handed over; the next two never ran


GPU_OUT_OF_MEMORY = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
CPU_OUT_OF_MEMORY = RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                                 "you tried to allocate 21474836480 bytes (injected)")


def _inject_out_of_memory(backend, *, rows_over: int, width_at_least: int | None = None,
                          error: Exception = GPU_OUT_OF_MEMORY) -> list[int]:
    """Make the model's generate raise `error` for batches of more than `rows_over` rows (and, if given, for any
    batch as wide as `width_at_least` tokens); returns the batch sizes tried."""
    real = backend.loaded.model.generate
    tried = []

    def generate(*args, **kwargs):
        rows, width = kwargs["input_ids"].shape
        tried.append(rows)
        if rows > rows_over or (width_at_least is not None and width >= width_at_least):
            raise error
        return real(*args, **kwargs)

    backend.loaded.model.generate = generate
    return tried


@pytest.mark.parametrize("error", [GPU_OUT_OF_MEMORY, CPU_OUT_OF_MEMORY], ids=["gpu", "cpu"])
def test_out_of_memory_halves_the_batch_and_finishes(backend, error):
    expected, _, _ = run(backend, [ask(p) for p in PROMPTS[:5]], GREEDY)
    tried = _inject_out_of_memory(backend, rows_over=2, error=error)
    outputs, calls, throughput = run(backend, [ask(p) for p in PROMPTS[:5]], GREEDY)
    assert tried == [5, 2, 2, 1]
    assert {k: o.text for k, o in outputs.items()} == {k: o.text for k, o in expected.items()}
    assert not any(o.error for o in outputs.values()) and throughput.prompts == 5


def test_a_prompt_that_does_not_fit_alone_fails_alone(backend):
    longest = max(PROMPTS, key=len)
    width = len(encode_prompt(backend.loaded, render_prompt(backend.loaded, ask(longest).messages)))
    _inject_out_of_memory(backend, rows_over=2, width_at_least=width)
    outputs, _, throughput = run(backend, [ask(p, samples=2) for p in PROMPTS], GREEDY)
    assert sorted(outputs) == sorted((p, s) for p in PROMPTS for s in (0, 1))
    for sample in (0, 1):
        failed = outputs[(longest, sample)]
        assert failed.error.startswith("out of memory generating this prompt alone (2 samples")
        assert failed.text == "" and failed.new_tokens == 0
    assert all(o.text and not o.error for k, o in outputs.items() if k[0] != longest)
    assert throughput.prompts == len(PROMPTS) - 1


def test_greedy_samples_are_one_answer_generated_once(backend):
    outputs, _, throughput = run(backend, [ask(p, samples=3) for p in PROMPTS[:2]], GREEDY)
    assert all(outputs[(p, 0)].text == outputs[(p, s)].text for p in PROMPTS[:2] for s in (1, 2))
    assert (throughput.outputs, throughput.new_tokens) == (6, 2 * 12)  # two rows generated, not six


def test_the_exponential_race_draws_from_the_softmax():
    # Token i must win with probability p_i, and a filtered token (-inf) never.
    probabilities = torch.tensor([0.6, 0.25, 0.15, 0.0])
    scores = probabilities.log().expand(40_000, 4).clone() + 3.0  # any constant shift leaves the softmax alone
    torch.manual_seed(0)
    winners = ExponentialRace()(None, scores).argmax(-1)
    shares = torch.bincount(winners, minlength=4).float() / len(winners)
    assert torch.allclose(shares, probabilities, atol=0.01)
    assert shares[3] == 0


def test_another_runtime_error_is_not_taken_for_out_of_memory(backend):
    _inject_out_of_memory(backend, rows_over=0, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run(backend, [ask(p) for p in PROMPTS[:3]], GREEDY)


@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 0.95, 0.999])
def test_the_nucleus_filter_keeps_the_tokens_transformers_keeps(top_p):
    from transformers.generation.logits_process import TopPLogitsWarper

    torch.manual_seed(1)
    # Peaked rows (a few likely tokens) and flat ones (a random model's), as logits after a temperature.
    scores = torch.cat([torch.randn(16, 2048) * 4, torch.randn(16, 2048) * 0.3])
    ours = NucleusFilter(top_p)(None, scores.clone())
    theirs = TopPLogitsWarper(top_p)(None, scores.clone())
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert torch.equal(ours[~torch.isinf(ours)], scores[~torch.isinf(ours)])  # kept scores untouched
