"""Seq2seq translator benchmark: the CTranslate2 runtime against transformers, same model, same sentences.

    .venv/bin/python bench/seq2seq_bench.py                                   # 256 sentences, 32 tokens, batch 16
    .venv/bin/python bench/seq2seq_bench.py --sentences 64 --rounds 1         # a smoke run

The tiny NLLB-style model (translation/backends/tiny_seq2seq.py, random weights, built into a temporary folder) is
converted to CTranslate2 (translation/backends/seq2seq.py's convert_to_ctranslate2, float32 as the original); both
folders run through the seq2seq translator's own backend (Seq2SeqBackend) in this process, one CPU thread each
(torch.set_num_threads(1), which the CTranslate2 path follows), greedy, the same max_new_tokens and batch size (the
translation job's, 16), on the same sentences: every instruction, input and output of the sample instruction set
(instructions/data/sample_alpaca.jsonl), repeated up to --sentences, English into Swahili. The random model's
translations stop at </s> or at max_new_tokens; both runtimes decode the same tokens (`new_tokens` and
`identical_translations` say so), so the work is equal. Rounds alternate between the runtimes after one warm-up
each; the median round counts.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "instructions" / "data" / "sample_alpaca.jsonl"


def sample_sentences() -> list[str]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row[field] for row in rows for field in ("instruction", "input", "output") if row.get(field)]


def run(backend, requests) -> tuple[float, dict[str, str], int]:  # noqa: ANN001
    outputs: list = []
    began = time.perf_counter()
    backend.translate(requests, on_outputs=outputs.extend)
    seconds = time.perf_counter() - began
    return seconds, {output.key: output.text for output in outputs}, sum(output.new_tokens for output in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import ctranslate2
    import torch

    from translation.backends.seq2seq import Seq2SeqBackend, TranslationRequest, convert_to_ctranslate2
    from translation.backends.tiny_seq2seq import build_tiny_seq2seq

    torch.set_num_threads(1)
    texts = sample_sentences()
    sentences = [texts[i % len(texts)] for i in range(args.sentences)]
    requests = [TranslationRequest(str(i), text, "eng_Latn", "swh_Latn") for i, text in enumerate(sentences)]
    with tempfile.TemporaryDirectory() as folder:
        model_dir = build_tiny_seq2seq(Path(folder) / "tiny-mt", texts * 3)
        ct2_dir = convert_to_ctranslate2(model_dir, Path(folder) / "tiny-mt-ct2")
        backends = {name: Seq2SeqBackend(str(path), label=name, batch_size=args.batch_size,
                                         max_new_tokens=args.max_new_tokens, device="cpu")
                    for name, path in (("transformers", model_dir), ("ctranslate2", ct2_dir))}
        assert backends["ctranslate2"]._ct2 is not None and backends["transformers"]._model is not None
        for backend in backends.values():
            run(backend, requests[:args.batch_size])  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in backends}
        texts_by: dict[str, dict[str, str]] = {}
        tokens: dict[str, int] = {}
        for _ in range(max(1, args.rounds)):
            for name, backend in backends.items():
                took, texts_by[name], tokens[name] = run(backend, requests)
                seconds[name].append(took)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    line = {
        "bench": "seq2seq",
        "sentences": len(requests), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "rounds": max(1, args.rounds),
        "ctranslate2_version": ctranslate2.__version__, "new_tokens": tokens,
        "transformers_sentences_per_s": round(len(requests) / median["transformers"], 1),
        "ctranslate2_sentences_per_s": round(len(requests) / median["ctranslate2"], 1),
        "transformers_tokens_per_s": round(tokens["transformers"] / median["transformers"]),
        "ctranslate2_tokens_per_s": round(tokens["ctranslate2"] / median["ctranslate2"]),
        "ratio": round(median["transformers"] / median["ctranslate2"], 2),
        "identical_translations": sum(texts_by["ctranslate2"][key] == text
                                      for key, text in texts_by["transformers"].items()),
        "seconds": {name: [round(value, 3) for value in values] for name, values in seconds.items()},
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
