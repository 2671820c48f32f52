"""The locally built tiny model: loads with the Auto classes, round-trips every script, renders chats for TRL."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.tiny_model import build_tiny_model

TEXTS = [
    "Habari ya asubuhi, rafiki yangu.",
    "வணக்கம், நீங்கள் எப்படி இருக்கிறீர்கள்?",
    "你好，今天天气很好。",
    "مرحبا، كيف حالك اليوم؟",
    "ሰላም፣ እንዴት ነህ?",
    "Explain why the sky is blue.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), TEXTS * 5, seed=0)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_it_loads_with_auto_classes(model_dir: Path, tokenizer) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.model_type == "llama"
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (64, 2)
    assert model.config.vocab_size == len(tokenizer)
    assert (model_dir / "model.safetensors").is_file()
    ids = torch.tensor([tokenizer("Habari")["input_ids"]])
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


@pytest.mark.parametrize(
    "text",
    [
        "தமிழ் ஒரு செம்மொழி; இது இந்தியாவில் பேசப்படுகிறது.",  # Tamil
        "اللغة العربية تُكتب من اليمين إلى اليسار.",  # Arabic
        "中文没有空格，汉字很多。",  # Chinese
        "አማርኛ በግዕዝ ፊደል ይጻፋል።",  # Amharic (Ge'ez script)
        "ქართული ენა",  # Georgian: absent from the training texts, still exact through byte tokens
        "  two leading spaces, a tab\tand a newline\n",
    ],
)
def test_it_round_trips_text_exactly(tokenizer, text: str) -> None:
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_it_has_special_tokens(tokenizer) -> None:
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<s>", "</s>", "<pad>", "<unk>"
    )
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3


def test_chat_template_renders_roles_and_generation_prompt(tokenizer) -> None:
    chat = [{"role": "user", "content": "Habari?"}, {"role": "assistant", "content": "Nzuri."}]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == "<s><|user|>\nHabari?\n<|assistant|>\nNzuri.</s>"
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<s><|user|>\nHabari?\n<|assistant|>\n"


def test_prompt_tokens_are_a_prefix_of_prompt_and_reply(tokenizer) -> None:
    """DPO splits prompt and completion by common token prefix; a non-prefix would cut the prompt short."""
    prompt = [{"role": "user", "content": "வணக்கம்"}]
    reply = [{"role": "assistant", "content": "你好"}]
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(prompt + reply, return_dict=True)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids


def test_assistant_mask_covers_reply_and_eos(tokenizer) -> None:
    """TRL's assistant_only_loss trains on what {% generation %} marks: the reply and the token that ends it."""
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Jambo"}]
    out = tokenizer.apply_chat_template(chat, return_assistant_tokens_mask=True, return_dict=True)
    masked = [token for token, keep in zip(out["input_ids"], out["assistant_masks"], strict=True) if keep]
    assert tokenizer.decode(masked) == "Jambo</s>"
    assert is_chat_template_stop_token_trained(tokenizer)


def test_it_is_deterministic(model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again", TEXTS * 5, seed=0)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (again / name).read_bytes() == (model_dir / name).read_bytes()
