"""A tiny random-weight NLLB-style seq2seq model (M2M100 architecture, as NLLB-200 is), built locally for tests and
demos: 2 encoder and 2 decoder layers of width 64, a byte-level BPE tokenizer trained on the given texts (as
training/tiny_model.py's) with one special token per FLORES-200 code it "knows". Its translations are noise; what
it proves is the path (language tokens, forced first token, batching, decoding). Django-free; nothing downloaded.

The special tokens take NLLB-200's ids: <s> 0, <pad> 1, </s> 2, <unk> 3. M2M100's sinusoidal positions start
right after the padding id, and CTranslate2's converter takes them from row 2 on (`offset`), which is NLLB's
layout (pad 1); with pad 0 a converted model would read every position one row off and translate differently.

    from translation.backends.tiny_seq2seq import build_tiny_seq2seq
    build_tiny_seq2seq("var/tiny-mt", ["Hello", "Habari"], languages=["eng_Latn", "swh_Latn"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_LANGUAGES = ("eng_Latn", "swh_Latn", "arb_Arab", "zho_Hans")
# NLLB-200's order, which fixes the ids (see above).
SPECIAL_TOKENS = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_nllb_tokenizer(texts: Iterable[str], *, languages: Sequence[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer (every script round-trips) with NLLB's special ids and one token per language."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS, clean_up_tokenization_spaces=False,
                                        model_max_length=1024)
    tokenizer.add_tokens(list(languages), special_tokens=True)
    return tokenizer


def build_tiny_seq2seq(output_dir: str | Path, texts: Iterable[str], *,
                       languages: Sequence[str] = DEFAULT_LANGUAGES, seed: int = 0) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    tokenizer = train_nllb_tokenizer(texts, languages=languages)
    # vocab: 512 + languages at most x 64 = about 33,000 embedding weights, shared by encoder, decoder and output.
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
        # Weights of std 0.3 (not M2M100's 0.02): outputs that differ with the source, so that comparing two
        # runtimes (CTranslate2 and transformers) or padded and unpadded batches means something.
        init_std=0.3,
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output
