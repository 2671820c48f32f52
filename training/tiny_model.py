"""A tiny Llama-architecture causal LM with a byte-level BPE tokenizer, built locally from our own texts.

Tests and demos need a model that `AutoModelForCausalLM.from_pretrained` can load, but nothing may be downloaded
from a hub here. Byte-level BPE starts from the 256 byte values, so every script (Tamil, Ge'ez, Han, Arabic, ...)
round-trips exactly even when the training texts never contained it; merges only make common strings shorter.

    from training.tiny_model import build_tiny_model
    path = build_tiny_model("var/tiny", ["Habari ya asubuhi", "வணக்கம்", "你好"])

Django-free on purpose: the training scripts and their tests import it without settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

# Order fixes the ids: <pad> 0, <s> 1, </s> 2, <unk> 3, then the role markers.
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# Each turn opens with a role marker on its own line. The assistant's text and the end-of-sequence token sit inside
# {% generation %} so that TRL's `assistant_only_loss` masks exactly the reply *and* the token that ends it (the
# model must learn to stop). Nothing follows an assistant turn's EOS, so the prompt rendered with
# `add_generation_prompt=True` is a strict prefix of prompt + reply: DPO splits prompt and completion token ids by
# common prefix and would otherwise cut the prompt short.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% else %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_byte_level_tokenizer(texts: Iterable[str], *, vocab_size: int = 2048):
    """Train a byte-level BPE tokenizer and wrap it for transformers (bos/eos/pad/unk and the chat template)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special_tokens = [*SPECIAL_TOKENS.values(), *ROLE_TOKENS]
    backend = Tokenizer(models.BPE())
    # add_prefix_space=False: decode(encode(text)) must give back `text` byte for byte, with no leading space.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special_tokens,
        # The full byte alphabet, so scripts absent from `texts` still encode (as byte tokens), never as <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **SPECIAL_TOKENS,
        additional_special_tokens=list(ROLE_TOKENS),
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    output_dir: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 2048,
    hidden_size: int = 64,
    num_layers: int = 2,
    heads: int = 4,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Path:
    """Build a randomly initialised (seeded) LlamaForCausalLM and its tokenizer in `output_dir`; return the path.

    Deterministic: the same texts, sizes and seed give byte-identical files. Takes a few seconds on one CPU core.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if hidden_size % heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of heads ({heads})")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_byte_level_tokenizer(texts, vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # Seed a private generator state: random init must not depend on what ran before in this process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    _write_provenance(output_dir, seed=seed, vocab_size=len(tokenizer))
    return output_dir


def _write_provenance(output_dir: Path, *, seed: int, vocab_size: int) -> None:
    """Say in the folder what this model is, so nobody mistakes it for a trained one."""
    note = {"kind": "tiny-random-llama", "built_by": "training.tiny_model.build_tiny_model", "seed": seed,
            "vocab_size": vocab_size, "trained": False}
    (output_dir / "tiny_model.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
