"""Evaluation speed (issue 16, point 3) on the tiny model: log-likelihoods scored in right-padded batches that span
benchmarks and languages equal a one-at-a-time computation; options that share their row take one forward pass and
only continuation positions reach the output layer; a run batches generation across benchmarks and languages,
without changing a single output, loads its model once and records where its time went; token ids are cached."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from annotation.models import JobStatus
from evaluation import inference
from evaluation.benchmarks import all_benchmarks, benchmark_names, get_benchmark
from evaluation.inference import (
    Prompt,
    ScoringStats,
    TokenCache,
    _encode_pair,
    benchmark_prompt,
    encode_prompt,
    generate,
    score_options,
)
from evaluation.outputs import read_records
from evaluation.serializers import EvaluationRunSerializer
from evaluation.services import evaluation_run_create, evaluation_run_execute, execution
from evaluation.services.execution import PHASES


def classification_sample(tiny) -> tuple[list[Prompt], list[tuple[str, ...]]]:
    """Every example of every classification benchmark's sample set, in every language: plain-text (lm-eval's
    XCOPA and PAWS-X) and chat-templated (the seed formats, Belebele) prompts, two or four options each."""
    prompts, options = [], []
    for benchmark in all_benchmarks():
        if benchmark.generates:
            continue
        for language in benchmark.languages(benchmark.sample_root):
            for example in benchmark.load(benchmark.sample_root, language):
                prompts.append(benchmark_prompt(tiny, benchmark, example))
                options.append(example.options)
    return prompts, options


def alone(tiny, prompt: Prompt, option: str) -> float:
    """The option's log-likelihood from one forward pass over its own context + option: no batch, no padding, the
    whole vocabulary through the softmax, in float64."""
    context, continuation = _encode_pair(tiny, prompt, option)
    with torch.inference_mode():
        logits = tiny.model(torch.tensor([context + continuation])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    # Token i of the option sits at position len(context) + i and is predicted one position earlier.
    return sum(float(log_probs[len(context) + i - 1, token]) for i, token in enumerate(continuation))


def test_batched_loglikelihoods_equal_a_one_at_a_time_computation(tiny):
    prompts, options = classification_sample(tiny)
    assert {p.templated for p in prompts} == {True, False} and {len(o) for o in options} == {2, 4}
    stats = ScoringStats()
    scores = score_options(tiny, prompts, options, batch_size=16, stats=stats)
    assert stats.batches < len(prompts) / 4, "batches of 16 rows mix benchmarks and languages"
    for prompt, choices, got in zip(prompts, options, scores, strict=True):
        assert got == pytest.approx([alone(tiny, prompt, option) for option in choices], abs=1e-4)


def test_options_that_share_their_row_take_one_forward_pass_and_only_their_positions_reach_the_output(tiny):
    belebele = get_benchmark("belebele")
    examples = [e for language in belebele.languages(belebele.sample_root)
                for e in belebele.load(belebele.sample_root, language)]
    prompts = [benchmark_prompt(tiny, belebele, example) for example in examples]
    rows, positions, outputs = [], [], []

    def inputs(module, args, kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        positions.append(kwargs["input_ids"].numel())

    def output_layer(module, args, output):
        outputs.append(output.shape[0] * output.shape[1])

    hooks = [tiny.model.register_forward_pre_hook(inputs, with_kwargs=True),
             tiny.model.get_output_embeddings().register_forward_hook(output_layer)]
    try:
        scores = score_options(tiny, prompts, [example.options for example in examples], batch_size=4)
    finally:
        for hook in hooks:
            hook.remove()
    # " A", " B", " C" are one token each in the tiny tokenizer, " D" two: the three share the passage's row, as in
    # lm-eval (its logits cache for one-token continuations), and " D" needs a row ending in its first token.
    shared = {tuple(context + continuation[:-1]) for prompt, example in zip(prompts, examples, strict=True)
              for context, continuation in (_encode_pair(tiny, prompt, option) for option in example.options)}
    assert sum(rows) == len(shared) == 2 * len(examples) == 30, "four options, two rows"
    assert all(len(set(s)) == 4 for s in scores)
    # The output layer runs on the positions that predict an answer, from the batch's earliest (rows of a batch
    # differ in length), not on every token of each passage: 340 of 6,560 positions here.
    assert sum(outputs) < sum(positions) / 10
    for prompt, example, got in zip(prompts[:3], examples, scores, strict=False):
        assert got == pytest.approx([alone(tiny, prompt, option) for option in example.options], abs=1e-4)


def test_an_evaluation_run_batches_across_benchmarks_and_languages_and_records_its_timings(tiny_base, tiny,
                                                                                         monkeypatch):
    run = evaluation_run_create(base_model=tiny_base, benchmarks=benchmark_names(), samples=True, max_new_tokens=4,
                                batch_size=8, enqueue=False)
    prefills = []  # forward passes over more than one position: a generation batch's first step, or a scoring batch
    loads = []

    def count(module, args, kwargs):
        if kwargs["input_ids"].shape[1] > 1:
            prefills.append(kwargs["input_ids"].shape[0])

    def load_and_watch(spec, **kwargs):
        loaded = inference.load_model(spec, device="cpu")
        loads.append(loaded.model.register_forward_pre_hook(count, with_kwargs=True))
        return loaded

    monkeypatch.setattr(execution, "load_model", load_and_watch)
    run = evaluation_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    generated = [r for r in read_records(run.outputs_path) if "output" in r]
    pairs = {(b.name, language): len(b.load(b.sample_root, language))
             for b in all_benchmarks() if b.generates for language in b.languages(b.sample_root)}
    assert len(generated) == sum(pairs.values()) and {(r["benchmark"], r["language"]) for r in generated} == set(pairs)
    timings = run.timings
    assert timings["models_loaded"] == 1 == len(loads)
    # The sample sets: 99 prompts in 25 benchmark-language pairs, so 13 batches of 8 (one batch per pair: 25).
    assert timings["generation"]["batches"] == math.ceil(sum(pairs.values()) / 8) < len(pairs)
    assert timings["loglikelihood"]["batches"] == math.ceil(timings["loglikelihood"]["rows"] / 8)
    assert len(prefills) == timings["generation"]["batches"] + timings["loglikelihood"]["batches"]
    assert set(timings["seconds"]) == {*PHASES, "other"}
    assert all(timings["seconds"][phase] > 0 for phase in ("load_model", "generate", "loglikelihood", "write"))
    assert sum(timings["share"].values()) == pytest.approx(1, abs=0.01)
    assert timings["token_cache"]["hits"] > 0
    assert EvaluationRunSerializer(run).data["timings"] == timings, "the API shows them"

    # Batching across benchmarks and languages changes no output: each pair generated on its own gives the same.
    for benchmark_name, language in [("flores-en-xx", "ta"), ("xlsum", "zh-Hans"), ("open-ended", "sw")]:
        benchmark = get_benchmark(benchmark_name)
        examples = benchmark.load(benchmark.sample_root, language)
        own = generate(tiny, [benchmark_prompt(tiny, benchmark, e, max_new_tokens=4) for e in examples],
                       max_new_tokens=4, batch_size=8)
        saved = {r["id"]: r["output"] for r in generated if (r["benchmark"], r["language"]) == (benchmark_name,
                                                                                               language)}
        assert [saved[e.id] for e in examples] == [g.text for g in own]


def test_token_ids_are_cached_per_model_and_bounded(tiny):
    tiny = dataclasses.replace(tiny, token_cache=TokenCache())  # the session's model, with an empty cache
    xcopa = get_benchmark("xcopa")
    example = xcopa.load(xcopa.sample_root, "sw")[0]
    prompt = benchmark_prompt(tiny, xcopa, example)
    score_options(tiny, [prompt], [example.options])
    # The context, then context + each option: the context's second encoding is a hit.
    assert (tiny.token_cache.misses, tiny.token_cache.hits) == (3, 1)
    ids = encode_prompt(tiny, prompt)
    ids.append(-1)  # a caller's list is its own
    assert encode_prompt(tiny, prompt) == ids[:-1] == tiny.tokenizer(prompt.text)["input_ids"]

    small = TokenCache(budget=16)
    texts = ["one two three", "four five six", "seven eight nine"]
    sizes = [len(small.encode(tiny.tokenizer, text, special=False)) for text in texts]
    assert sum(sizes) > 16 >= sum(sizes[1:]), "the third text goes past the budget"
    assert small.tokens == sum(sizes[1:]) and list(small._ids) == [(text, False) for text in texts[1:]]
    small.encode(tiny.tokenizer, "word " * 20, special=False)
    assert ("word " * 20, False) not in small._ids, "a text longer than the whole budget is not kept"
