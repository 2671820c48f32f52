"""A prompt longer than the model's context is cut where the task's reference tools cut it: from the left, as
lm-evaluation-harness cuts a context, but keeping BOS; an XL-Sum article at its end, as XL-Sum's models read one."""

from __future__ import annotations

import dataclasses

import torch

from evaluation.benchmarks import get_benchmark
from evaluation.inference import _fit, benchmark_prompt, encode_prompt, generate, render_prompt


def test_a_cut_from_the_left_keeps_bos():
    # room 5: BOS, then the last 4 of the 9 prompt tokens.
    assert _fit([1, 10, 11, 12, 13, 14, 15, 16, 17], 5, bos_id=1) == ([1, 14, 15, 16, 17], True)
    assert _fit([10, 11, 12, 13, 14, 15], 4, bos_id=1) == ([12, 13, 14, 15], True), "no BOS to keep"
    assert _fit([1, 10, 11], 5, bos_id=1) == ([1, 10, 11], False)


def test_a_long_prompt_is_generated_from_bos_and_its_end(tiny):
    short = dataclasses.replace(tiny, context_length=40)
    prompt = render_prompt(short, [{"role": "user", "content": "neno " * 200}])
    ids = encode_prompt(short, prompt)
    bos = tiny.tokenizer.bos_token_id
    assert ids[0] == bos and len(ids) > 40
    [generation] = generate(short, [prompt], max_new_tokens=8)
    assert generation.truncated_prompt
    # 40 positions - 8 new tokens = room for 32 prompt tokens: BOS and the last 31.
    kept = [bos, *ids[-31:]]
    with torch.no_grad():
        by_hand = tiny.model.generate(torch.tensor([kept]), attention_mask=torch.ones(1, 32, dtype=torch.long),
                                      do_sample=False, max_new_tokens=8, pad_token_id=tiny.tokenizer.pad_token_id,
                                      temperature=None, top_p=None, top_k=None)
    expected = by_hand[0, 32:]
    eos = tiny.tokenizer.eos_token_id
    expected = expected[: (expected == eos).nonzero()[0, 0] + 1] if (expected == eos).any() else expected
    assert generation.text == tiny.tokenizer.decode(expected, skip_special_tokens=True).strip()


def test_an_xlsum_article_too_long_for_the_context_loses_its_end_not_its_opening(tiny):
    benchmark = get_benchmark("xlsum")
    article = benchmark.load(benchmark.sample_root, "sw")[0]
    long = dataclasses.replace(article, input=" ".join([article.input] * 30))
    short = dataclasses.replace(tiny, context_length=256)
    prompt = benchmark_prompt(short, benchmark, long, max_new_tokens=32)
    assert prompt.shortened and prompt.templated
    assert len(encode_prompt(short, prompt)) <= 256 - 32
    assert prompt.text.startswith("<s><|user|>\n" + article.input[:60]), "the article's opening and BOS stay"
    assert prompt.text.endswith("Write the summary in Swahili.\n<|assistant|>\n"), "the instruction stays"
    [generation] = generate(short, [prompt], max_new_tokens=32)
    assert generation.truncated_prompt, "the output is marked as made from a shortened article"
    whole = benchmark_prompt(tiny, benchmark, article, max_new_tokens=32)
    assert not whole.shortened and article.input in whole.text, "with room enough, nothing is cut"
