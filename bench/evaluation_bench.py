"""Evaluation benchmark: batched greedy generation against a one-prompt-at-a-time loop, and language identification.

    .venv/bin/python bench/evaluation_bench.py                   # 64 prompts, 32 new tokens, batches of 32, 1 thread
    .venv/bin/python bench/evaluation_bench.py --prompts 128 --batch-size 64 --threads 2
    .venv/bin/python bench/evaluation_bench.py --skip-generation # language identification only

Generation runs on the tiny local model (built into a temporary folder, random weights), on the same prompts in
the same process: the shipped sample sets' translation, summarization and open-ended prompts, rendered through the
chat template, exactly as an evaluation run builds them. Targets: batched ≥ 5× the loop's tokens/s on a CPU, and
language identification ≥ 10,000 responses/s on one core (the off-target check every generated output gets).
Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# One core means one core: numpy's BLAS and torch's pools must not spread over the others.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample_examples():
    from evaluation.benchmarks import all_benchmarks

    examples = []
    for benchmark in all_benchmarks():
        if not benchmark.generates:
            continue
        for language in benchmark.languages(benchmark.sample_root):
            examples += [(benchmark, example) for example in benchmark.load(benchmark.sample_root, language)]
    return examples


def build_model(folder: Path) -> Path:
    os.environ.setdefault("CROSSFEED_VAR_DIR", str(folder / "var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    import django

    django.setup()
    from training.services.registry import tiny_model_build

    tiny_model_build(output_dir=folder / "tiny", register=False)  # the same model the tests and demos use
    return folder / "tiny"


def bench_generation(args) -> dict:
    import torch

    from evaluation.inference import ModelSpec, Throughput, generate, load_model, render_prompt

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_model(ModelSpec(str(build_model(Path(folder)))), device="cpu")
    examples = sample_examples()
    prompts = [render_prompt(loaded, benchmark.messages(example)) for benchmark, example in examples]
    prompts = (prompts * (args.prompts // len(prompts) + 1))[: args.prompts]
    generate(loaded, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up: first calls allocate and compile

    batched_tp = Throughput()
    began, began_cpu = time.perf_counter(), time.process_time()
    batched = generate(loaded, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       throughput=batched_tp)
    batched_wall, batched_cpu = time.perf_counter() - began, time.process_time() - began_cpu

    single_tp = Throughput()
    began, began_cpu = time.perf_counter(), time.process_time()
    single = [generate(loaded, [prompt], max_new_tokens=args.max_new_tokens, batch_size=1, throughput=single_tp)[0]
              for prompt in prompts]
    single_wall, single_cpu = time.perf_counter() - began, time.process_time() - began_cpu

    batched_rate = batched_tp.new_tokens / batched_wall
    single_rate = single_tp.new_tokens / single_wall
    return {
        "bench": "evaluation_generation", "model": "tiny-llama (2 layers, hidden 64, random weights)",
        "device": "cpu", "threads": args.threads, "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "batched_tokens_per_s": round(batched_rate, 1), "one_at_a_time_tokens_per_s": round(single_rate, 1),
        "batched_seconds": round(batched_wall, 2), "one_at_a_time_seconds": round(single_wall, 2),
        "ratio": round(batched_rate / single_rate, 2), "target_ratio": 5.0,
        # CPU seconds as well: on a shared machine wall time also counts other processes' turns.
        "ratio_by_cpu_time": round((batched_tp.new_tokens / batched_cpu) / (single_tp.new_tokens / single_cpu), 2),
        "identical_outputs": f"{sum(a.text == b.text for a, b in zip(batched, single, strict=True))}/{len(prompts)}",
    }


def bench_langid(args) -> dict:
    from evaluation.metrics.langid import MAX_BYTES, detect
    from evaluation.scoring import off_target_mark

    examples = sample_examples()
    # Responses as a model writes them: sentences, articles and instructions in seven languages and five scripts,
    # checked against the language they should be in (half of them against another one, so both verdicts occur).
    texts = []
    for index, (_, example) in enumerate(examples):
        for text in filter(None, (example.input, example.reference)):
            texts.append((text, example.expected_language if index % 2 else "en"))
    texts = (texts * (args.responses // len(texts) + 1))[: args.responses]
    detect("warm-up")  # loads the model (~0.5 s), which a worker does once
    began, began_cpu = time.perf_counter(), time.process_time()
    marks = [off_target_mark(text, expected) for text, expected in texts]
    elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    sizes = [min(len(text.encode()), MAX_BYTES) for text, _ in texts]
    return {
        "bench": "evaluation_langid", "responses": len(texts), "cores": 1,
        # Per CPU second of this one process (= one core's worth), and per wall second, which on a shared machine
        # also counts the time other processes held the core.
        "responses_per_s": round(len(texts) / cpu), "responses_per_wall_s": round(len(texts) / elapsed),
        "target_responses_per_s": 10_000,
        "mean_bytes_identified": round(sum(sizes) / len(sizes)),
        "off_target": sum(mark is True for mark in marks), "on_target": sum(mark is False for mark in marks),
        "not_measurable": sum(mark is None for mark in marks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--responses", type=int, default=20_000)
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()
    if not args.skip_generation:
        print(json.dumps(bench_generation(args)), flush=True)
    print(json.dumps(bench_langid(args)), flush=True)


if __name__ == "__main__":
    main()
