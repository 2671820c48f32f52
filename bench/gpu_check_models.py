"""The models and sizes of bench/gpu_check.py: a ~1.1B Llama for training (section a) and a ~0.5B one for
generation and evaluation (sections b and c), random weights, built on the GPU, with a 32,000-token tokenizer built
here from the repository's own texts; with --smoke, training/tiny_model.py's tiny model for all three. Django-free.
"""

from __future__ import annotations

import gc
import json
import random
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VOCAB_SIZE = 32_000
# ~0.5B parameters (491M with the 32,000 vocabulary, untied), Llama-shaped: the size issue 13 asks for.
LLAMA_05B = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 4, "max_position_embeddings": 4096}
DEMO_ITEMS = REPO / "annotation" / "data" / "demo_items.jsonl"


@dataclass(frozen=True)
class Sizes:
    batch_size: int
    seq_len: int
    steps: int
    warmup: int
    gen_prompts: int
    gen_batch_sizes: tuple[int, ...]
    max_new_tokens: int
    eval_prompts: int
    eval_batch_sizes: tuple[int, ...]
    timeout_s: int  # per training process


# GPU: batch 16 x 1024 is where the H200 run left the card busy (docs/benchmarks.md); 8 is evaluation's default batch.
GPU_SIZES = Sizes(batch_size=16, seq_len=1024, steps=30, warmup=5, gen_prompts=256, gen_batch_sizes=(32, 128),
                  max_new_tokens=128, eval_prompts=64, eval_batch_sizes=(8, 32), timeout_s=300)
SMOKE_SIZES = Sizes(batch_size=2, seq_len=64, steps=4, warmup=1, gen_prompts=6, gen_batch_sizes=(2, 4),
                    max_new_tokens=8, eval_prompts=4, eval_batch_sizes=(2, 4), timeout_s=900)


def corpus() -> list[str]:
    """Texts in many scripts: the demo campaign's prompts and responses, and the FLORES sample sentences."""
    texts = []
    for line in DEMO_ITEMS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            texts += [item["prompt"]["text"], *(response["text"] for response in item["responses"])]
    for path in sorted((REPO / "evaluation" / "samples" / "flores200" / "devtest").glob("*.devtest")):
        texts += [text for text in path.read_text(encoding="utf-8").splitlines() if text.strip()]
    return texts


def bench_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """The tiny model's tokenizer (byte-level BPE, its special tokens and chat template) trained on `texts`, then
    filled up to `vocab_size` with merges of pieces it already has (seeded): a real model's vocabulary size, so the
    output layer costs what it costs there, and every id a random model samples decodes. Takes about a second."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from training.tiny_model import CHAT_TEMPLATE, ROLE_TOKENS, SPECIAL_TOKENS, train_byte_level_tokenizer

    state = json.loads(train_byte_level_tokenizer(texts, vocab_size=vocab_size).backend_tokenizer.to_str())
    vocab, merges = state["model"]["vocab"], state["model"]["merges"]
    special = {*SPECIAL_TOKENS.values(), *ROLE_TOKENS}
    pieces = [piece for piece in vocab if piece not in special]
    rng = random.Random(0)
    while len(vocab) < vocab_size:
        left, right = rng.choice(pieces), rng.choice(pieces)
        if len(left) + len(right) <= 12 and left + right not in vocab:
            vocab[left + right] = len(vocab)
            merges.append([left, right])
            pieces.append(left + right)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)), **SPECIAL_TOKENS,
                                        additional_special_tokens=list(ROLE_TOKENS),
                                        clean_up_tokenization_spaces=False, model_max_length=4096)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_llama(folder: Path, config, tokenizer) -> Path:
    """A randomly initialised (seed 0) LlamaForCausalLM in bf16, built on the GPU, saved with `tokenizer`."""
    import torch
    from transformers import LlamaForCausalLM

    config.vocab_size = len(tokenizer)
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return folder


def model_info(folder: Path) -> dict:
    """Parameters counted on the meta device (nothing allocated), and the shape MFU needs."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    parameters = sum(p.numel() for p in model.parameters())
    return {"path": folder.name, "parameters": parameters,
            "matmul_parameters": parameters - model.get_input_embeddings().weight.numel(),
            "layers": config.num_hidden_layers, "hidden_size": config.hidden_size, "vocab_size": config.vocab_size,
            "weights": "random (seed 0)"}


class Models:
    """The two models, built on first use into `root`: `train` (~1.1B) for section a, `generate` (~0.5B) for b and
    c; with --smoke both are training/tiny_model.py's tiny model."""

    def __init__(self, root: Path, *, smoke: bool) -> None:
        self.root, self.smoke = root, smoke
        self._built: dict[str, Path] = {}

    def get(self, kind: str) -> Path:
        kind = "tiny" if self.smoke else kind
        if kind not in self._built:
            self._built[kind] = self._build(kind)
        return self._built[kind]

    def _build(self, kind: str) -> Path:
        from gpu_training_bench import llama_1b
        from transformers import LlamaConfig

        from training.tiny_model import build_tiny_model

        folder = self.root / f"model-{kind}"
        if self.smoke:
            return build_tiny_model(folder, corpus(), seed=0)
        config = llama_1b() if kind == "train" else LlamaConfig(**LLAMA_05B)
        return build_llama(folder, config, bench_tokenizer(corpus()))

