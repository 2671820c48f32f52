"""A tiny random-weight NLLB-style seq2seq model (M2M100 architecture, as NLLB-200 is), built locally for tests and
demos: 2 encoder and 2 decoder layers of width 64, a byte-level BPE tokenizer trained on the given texts (as
training/tiny_model.py's) with one special token per FLORES-200 code it "knows". Its translations are noise; what
it proves is the path (language tokens, forced first token, batching, decoding). Django-free; nothing downloaded.

    from translation.backends.tiny_seq2seq import build_tiny_seq2seq
    build_tiny_seq2seq("var/tiny-mt", ["Hello", "Habari"], languages=["eng_Latn", "swh_Latn"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_LANGUAGES = ("eng_Latn", "swh_Latn", "arb_Arab", "zho_Hans")


def build_tiny_seq2seq(output_dir: str | Path, texts: Iterable[str], *,
                       languages: Sequence[str] = DEFAULT_LANGUAGES, seed: int = 0) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    from training.tiny_model import train_byte_level_tokenizer

    tokenizer = train_byte_level_tokenizer(texts, vocab_size=512)
    tokenizer.add_tokens(list(languages), special_tokens=True)
    # vocab: 2,048 at most x 64 = 131,072 embedding weights, shared by encoder, decoder and output layer.
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output
