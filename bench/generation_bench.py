"""Generation benchmark: the generation job's transformers backend against a bare one-prompt-at-a-time loop.

    .venv/bin/python bench/generation_bench.py                          # 64 prompts, 32 new tokens, batch 8 and 32
    .venv/bin/python bench/generation_bench.py --prompts 128 --batch-sizes 8 --threads 2

Both run on the tiny local model (built into a temporary folder, random weights), in this process, on the same
prompts: the demo campaign's prompts, each with the instruction to answer in its item's response language, rendered
through the chat template as a generation job renders them; the same sampling (the job's defaults: temperature 0.8,
top_p 0.95, one sample) and the same max_new_tokens. The loop is what one would write without the backend:
`model.generate` on one encoded prompt at a time. Target: the backend ≥ 5× the loop's tokens/s on a CPU.
Prints one JSON line per batch size.
"""

from __future__ import annotations

import argparse
import json
import os
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
DEMO_ITEMS = ROOT / "annotation" / "data" / "demo_items.jsonl"
LANGUAGES = ROOT / "annotation" / "data" / "languages.json"


def build_model(folder: Path) -> Path:
    os.environ.setdefault("CROSSFEED_VAR_DIR", str(folder / "var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    import django

    django.setup()
    from training.services.registry import tiny_model_build

    tiny_model_build(output_dir=folder / "tiny", register=False)  # the same model the tests and demos use
    return folder / "tiny"


def demo_requests(count: int):
    """The demo items' prompts, asking for their response language (the first response's), `count` of them."""
    from annotation.languages import all_languages
    from generation.backends.base import Request
    from generation.prompting import prompt_messages

    names = {spec.code: spec for spec in all_languages()}
    items = [json.loads(line) for line in DEMO_ITEMS.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = []
    for index in range(count):
        item = items[index % len(items)]
        language = names[item["responses"][0]["language"]]
        messages = prompt_messages(item["prompt"]["text"], language_name=language.name,
                                   autonym=language.native_name)
        requests.append(Request(key=f"{item['external_id']}#{index}", messages=messages))
    return requests


def one_at_a_time(loaded, requests, params) -> tuple[int, float]:
    """(new tokens, seconds) of the bare loop: encode one prompt, generate, count up to the first EOS."""
    import torch

    from evaluation.inference import _eos_ids, encode_prompt, render_prompt

    eos_ids = _eos_ids(loaded)
    tokens, began = 0, time.perf_counter()
    with torch.inference_mode():
        for index, request in enumerate(requests):
            ids = torch.tensor([encode_prompt(loaded, render_prompt(loaded, request.messages))])
            torch.manual_seed(params.seed + index)
            sequence = loaded.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                temperature=params.temperature, top_p=params.top_p, top_k=0, max_new_tokens=params.max_new_tokens,
                pad_token_id=loaded.tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
            ended = next((i for i, token in enumerate(sequence) if token in eos_ids), None)
            tokens += ended + 1 if ended is not None else len(sequence)
    return tokens, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="8,32", help="comma-separated; 8 is the backend's default")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from evaluation.inference import ModelSpec
    from generation.backends.base import SamplingParams
    from generation.backends.transformers_backend import TransformersBackend

    torch.set_num_threads(args.threads)
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    requests = demo_requests(args.prompts)
    with tempfile.TemporaryDirectory() as folder:
        backend = TransformersBackend(ModelSpec(str(build_model(Path(folder)))), label="tiny", device="cpu")
    # Warm-up: first calls allocate and pick kernels.
    backend.generate(requests[:2], SamplingParams(max_new_tokens=4), on_outputs=lambda outputs: None)
    loop_tokens, loop_seconds = one_at_a_time(backend.loaded, requests, params)
    loop_rate = loop_tokens / loop_seconds
    for batch_size in (int(size) for size in args.batch_sizes.split(",")):
        backend.batch_size = batch_size
        began = time.perf_counter()
        throughput = backend.generate(requests, params, on_outputs=lambda outputs: None)
        wall = time.perf_counter() - began  # rendering and decoding included, as a job sees it
        rate = throughput.new_tokens / wall
        print(json.dumps({
            "bench": "generation", "model": "tiny-llama (2 layers, hidden 64, random weights)", "device": "cpu",
            "threads": args.threads, "prompts": len(requests), "max_new_tokens": args.max_new_tokens,
            "batch_size": batch_size, "backend_tokens_per_s": round(rate, 1),
            "backend_prompts_per_s": round(len(requests) / wall, 2), "backend_seconds": round(wall, 2),
            "one_at_a_time_tokens_per_s": round(loop_rate, 1), "one_at_a_time_seconds": round(loop_seconds, 2),
            "ratio": round(rate / loop_rate, 2), "target_ratio": 5.0,
        }), flush=True)
    backend.close()


if __name__ == "__main__":
    main()
