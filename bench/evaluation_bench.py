"""Evaluation benchmark: batched greedy generation against a one-prompt-at-a-time loop, language identification, and
the automatic evaluation after training, end to end.

    .venv/bin/python bench/evaluation_bench.py                   # 64 prompts, 32 new tokens, batches of 32, 1 thread
    .venv/bin/python bench/evaluation_bench.py --prompts 128 --batch-size 64 --threads 2
    .venv/bin/python bench/evaluation_bench.py --skip-generation --skip-after-training   # language identification
    .venv/bin/python bench/evaluation_bench.py --after-training-max-new-tokens 64        # a shorter end-to-end run

Generation runs on the tiny local model (built into a temporary folder, random weights), on the same prompts in
the same process: the shipped sample sets' translation, summarization and open-ended prompts, rendered through the
chat template, exactly as an evaluation run builds them. Targets: batched ≥ 5× the loop's tokens/s on a CPU, and
language identification ≥ 10,000 responses/s on one core (the off-target check every generated output gets).

The automatic evaluation after training: a succeeded SFT run of the tiny model (a real LoRA adapter with random
weights, so the version answers differently from its base) queues, through `evaluation_after_training`, the
evaluation of the version and of its base model on every benchmark and language of the sample sets, with the
real settings (512 new tokens, batches of 8); the worker's own function runs each one. Reported: the wall time per
model and in all, and the share of it spent loading the model, building prompts, generating, scoring
log-likelihoods, computing metrics and writing outputs and results (the run's own timers, EvaluationRun.timings).
The database and media live in the temporary folder, whatever CROSSFEED_VAR_DIR or DATABASE_URL say.

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
    from training.services.registry import tiny_model_build

    tiny_model_build(output_dir=folder / "tiny", register=False)  # the same model the tests and demos use
    return folder / "tiny"


def setup_django(folder: Path) -> None:
    """Django on a private database and media folder: `make bench` exports CROSSFEED_VAR_DIR=var, the real one."""
    os.environ["CROSSFEED_VAR_DIR"] = str(folder / "var")
    os.environ["CROSSFEED_MEDIA_ROOT"] = str(folder / "var" / "media")
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    import django

    django.setup()


def bench_generation(args) -> dict:
    import torch

    from evaluation.inference import ModelSpec, Throughput, generate, load_model, render_prompt

    torch.set_num_threads(args.threads)
    loaded = load_model(ModelSpec(str(build_model(args.folder))), device="cpu")
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


def lora_version(base, folder: Path):
    """A succeeded SFT run with its version: a LoRA adapter on q_proj/v_proj (the presets' targets) with random
    weights in both matrices, so that merging it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from annotation.models import JobStatus
    from training.models import ModelVersion, TrainingRun

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base.path)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder / "adapter")
    run = TrainingRun.objects.create(kind="sft", base_model=base, status=JobStatus.SUCCEEDED, sft_file="bench")
    ModelVersion.objects.create(name="tiny-sft-bench", base_model=base, run=run, kind="sft",
                                adapter_path=str(folder / "adapter"))
    return run


def bench_after_training(args) -> dict:
    import torch
    from django.core.management import call_command

    from evaluation.services import evaluation_after_training, evaluation_run_execute
    from training.services.registry import base_model_register

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    base = base_model_register(name="tiny-bench", path=str(build_model(args.folder)))
    queued = evaluation_after_training(lora_version(base, args.folder), enqueue=False,
                                       max_new_tokens=args.after_training_max_new_tokens)
    models, began = [], time.perf_counter()
    for evaluation in queued:
        started = time.perf_counter()
        done = evaluation_run_execute(run_id=evaluation.pk)
        models.append({"model": done.model_label, "status": done.status, "examples": done.progress_done,
                       "wall_seconds": round(time.perf_counter() - started, 2), **done.timings})
    wall = time.perf_counter() - began
    phases = {name: round(sum(model["seconds"][name] for model in models), 2) for name in models[0]["seconds"]}
    return {
        "bench": "evaluation_after_training", "device": "cpu", "threads": args.threads,
        "max_new_tokens": args.after_training_max_new_tokens, "batch_size": queued[0].batch_size,
        "models": len(models), "wall_seconds": round(wall, 2),
        "seconds": phases, "share": {name: round(value / wall, 3) for name, value in phases.items()},
        "per_model": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--responses", type=int, default=20_000)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--skip-after-training", action="store_true")
    parser.add_argument("--after-training-max-new-tokens", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        args.folder = Path(folder)
        setup_django(args.folder)
        if not args.skip_generation:
            print(json.dumps(bench_generation(args)), flush=True)
        print(json.dumps(bench_langid(args)), flush=True)
        if not args.skip_after_training:
            print(json.dumps(bench_after_training(args)), flush=True)


if __name__ == "__main__":
    main()
