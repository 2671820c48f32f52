"""Inference on the tiny model: log-likelihood scoring against a hand computation, batched left-padded generation
against one-at-a-time decoding, prompt rendering, truncation, and adapters."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evaluation.benchmarks import get_benchmark
from evaluation.inference import (
    ModelSpec,
    Throughput,
    encode_prompt,
    generate,
    load_model,
    render_prompt,
    score_options,
)

PROMPTS = [
    "Translate into Swahili: The village market opens every Saturday morning.",
    "你好",
    "வணக்கம் நண்பரே, இன்று எப்படி இருக்கிறீர்கள்? நான் நலமாக இருக்கிறேன், நன்றி.",
    "Habari za asubuhi",
    "A somewhat longer English prompt that has many more tokens than the shortest ones in this little list.",
]


def chat(tiny, text: str) -> str:
    return render_prompt(tiny, [{"role": "user", "content": text}])


def by_hand(tiny, prompt: str, option: str) -> float:
    """Sum of log-softmax over the option's tokens, from one unpadded forward pass of prompt + option."""
    context = encode_prompt(tiny, prompt)
    continuation = tiny.tokenizer(option, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = tiny.model(torch.tensor([context + continuation])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    # Token i of the option sits at position len(context) + i and is predicted by the logits one position earlier.
    return sum(float(log_probs[len(context) + i - 1, token]) for i, token in enumerate(continuation))


def test_the_prompt_goes_through_the_chat_template(tiny):
    messages = get_benchmark("flores-en-xx").messages(
        get_benchmark("flores-en-xx").load(get_benchmark("flores-en-xx").sample_root, "ta")[0])
    prompt = render_prompt(tiny, messages)
    assert prompt.startswith("<s><|user|>\nTranslate this English text into Tamil.")
    assert prompt.endswith("<|assistant|>\n")
    assert encode_prompt(tiny, prompt).count(tiny.tokenizer.bos_token_id) == 1, "the template writes BOS once"


@pytest.mark.parametrize("batch_size", [1, 5])
def test_option_scores_equal_a_hand_computation(tiny, batch_size):
    benchmark = get_benchmark("xcopa")
    examples = benchmark.load(benchmark.sample_root, "ta")[:2] + benchmark.load(benchmark.sample_root, "zh-Hans")
    prompts = [render_prompt(tiny, benchmark.messages(example)) for example in examples]
    options = [example.options for example in examples]
    scores = score_options(tiny, prompts, options, batch_size=batch_size)
    for prompt, choices, got in zip(prompts, options, scores, strict=True):
        expected = [by_hand(tiny, prompt, option) for option in choices]
        assert got == pytest.approx(expected, abs=1e-3)


def test_scoring_reports_each_prompt_once_when_all_its_options_are_done(tiny):
    prompts = [chat(tiny, text) for text in PROMPTS[:3]]
    seen = []
    scores = score_options(tiny, prompts, [("Yes", "No")] * 3, batch_size=2,
                           on_batch=lambda indices, values: seen.extend(zip(indices, values, strict=True)))
    assert sorted(index for index, _ in seen) == [0, 1, 2]
    assert all(scores[index] == values for index, values in seen)


def test_batched_left_padded_generation_equals_one_at_a_time(tiny):
    prompts = [chat(tiny, text) for text in PROMPTS]
    lengths = {len(encode_prompt(tiny, prompt)) for prompt in prompts}
    assert len(lengths) == len(prompts), "prompts of different lengths, so the batch really pads"
    batched = generate(tiny, prompts, max_new_tokens=24, batch_size=len(prompts))
    alone = [generate(tiny, [prompt], max_new_tokens=24, batch_size=1)[0] for prompt in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in alone]


def test_generation_returns_outputs_in_prompt_order_and_reports_every_batch(tiny):
    prompts = [chat(tiny, text) for text in PROMPTS]
    batches: list[list[int]] = []
    throughput = Throughput()
    outputs = generate(tiny, prompts, max_new_tokens=6, batch_size=2, throughput=throughput,
                       on_batch=lambda indices, generations: batches.append(indices))
    assert sorted(i for batch in batches for i in batch) == list(range(len(prompts)))
    first = batches[0]
    lengths = [len(encode_prompt(tiny, prompt)) for prompt in prompts]
    assert min(lengths[i] for i in first) >= max(lengths[i] for batch in batches[1:] for i in batch), "longest first"
    assert outputs[3].text == generate(tiny, [prompts[3]], max_new_tokens=6)[0].text
    assert throughput.prompts == 5 and throughput.new_tokens == sum(g.new_tokens for g in outputs)
    assert throughput.tokens_per_second > 0
    assert all(0 < g.new_tokens <= 6 for g in outputs)


def test_a_prompt_longer_than_the_context_keeps_its_end(tiny):
    short = dataclasses.replace(tiny, context_length=40)
    prompt = chat(short, "word " * 200)
    [generation] = generate(short, [prompt], max_new_tokens=8)
    assert generation.truncated_prompt
    [untouched] = generate(short, [chat(short, "hi")], max_new_tokens=8)
    assert not untouched.truncated_prompt


def test_adapters_are_merged_in_order(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    # Two non-trivial LoRA adapters (random B as well as A, so they change the output), the second made on top of
    # the first merged in, as DPO trains on the merged SFT model.
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    first = get_peft_model(model, config)
    first.save_pretrained(tmp_path / "sft")
    merged = first.merge_and_unload()
    second = get_peft_model(merged, config)
    second.save_pretrained(tmp_path / "dpo")
    expected = second.merge_and_unload()

    loaded = load_model(ModelSpec(str(tiny_model_dir), adapters=(str(tmp_path / "sft"), str(tmp_path / "dpo"))),
                        device="cpu")
    ids = torch.tensor([[1, 5, 200, 300, 17]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, expected(ids).logits, atol=1e-4)
        bare = load_model(ModelSpec(str(tiny_model_dir)), device="cpu")
        assert not torch.allclose(loaded.model(ids).logits, bare.model(ids).logits, atol=1e-3)
