"""The GPU check: one script, one go, under 8 minutes on a lent H100/H200, every figure the GPU section of
docs/benchmarks.md asks for. It supersedes bench/gpu_pipeline_check.py (section a runs the same pipeline and checks).

    bash bench/gpu_check.sh                            # on the GPU host: installs the carried wheels, then this script
    python bench/gpu_check.py --out $OUT/gpu_check.jsonl
    python bench/gpu_check.py --sections b,c           # a part only
    python bench/gpu_check.py --smoke                  # the whole script on the CPU with the tiny model, no figures

Sections (each prints one JSON line with its figures and the card's name; a failure in one is reported in its line
and the others still run; a first line, section "environment", gives the library versions and what is missing):

a. Training. Crossfeed's training/scripts/sft.py, then dpo.py on top of its adapter (the pipeline the worker runs),
   against bench/bare_trl.py, plain TRL with a peft LoraConfig, with the same settings: one settings dict is written
   as the YAML run config of ours and the JSON of the bare script. Same model (a ~1.1B Llama, 22 x 2048, random
   weights, built here), same data (chat rows truncated to the max length; preference pairs of about half of it),
   batch, max length, LoRA (r 8 on q/v), bf16, activation checkpointing, steps; Liger off in both (--liger: on in
   both). All four runs go through `accelerate launch` with training/configs/accelerate/single_gpu.yaml
   (--launcher python: a plain `python script`, as the worker starts a one-process run). tokens/s is TRL's own
   num_tokens count over the steady steps (after the first 5), timed from the per-step log lines both write;
   ratio = ours / bare, target >= 0.98. MFU counts as bench/gpu_training_bench.py does. Then "fitted": SFT and DPO
   once more with Crossfeed's scripts alone, at the same micro-batch x 4 accumulation with auto_micro_batch on, so
   that the micro-batch is sized to the card as a real run's is (training/scripts/batching.py); their MFU is the
   one issue 16 targets (>= 0.40), and the probes are in the line. The section's code is in
   bench/gpu_check_training.py, the models' in bench/gpu_check_models.py.
b. Candidate generation: generation.backends.transformers_backend.TransformersBackend on a ~0.5B Llama (28 x 1024,
   random weights) with a generation job's defaults (temperature 0.8, top_p 0.95, one sample), on the demo campaign's
   prompts with the instruction to answer in the response language (generation.prompting); prompts/s and tokens/s
   at two batch sizes, wall time as a job sees it (rendering and decoding included). Then VllmBackend on the same
   prompts when `import vllm` works there, else a line saying why it was skipped.
c. Evaluation: evaluation.inference.generate (greedy) on the FLORES sample prompts and score_options (log-likelihood)
   on the Belebele sample questions, four options each, same model, at two batch sizes: tokens/s and options/s.

Both models use a 32,000-token byte-level BPE built here (training/tiny_model.py's tokenizer and chat template,
trained on the repository's own texts, then filled with merges of its own pieces up to 32,000): nothing is
downloaded. Django-free: it imports training/, generation/backends, generation/prompting, evaluation/inference and
evaluation/benchmarks, none of which needs Django. Exit code 0 when every section asked for ran and succeeded (a
skipped vLLM is not a failure).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]
for _name, _value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_name, _value)

from gpu_check_models import DEMO_ITEMS, GPU_SIZES, SMOKE_SIZES, Models, Sizes, model_info  # noqa: E402
from gpu_check_training import SECTION_A_NEEDS, section_a  # noqa: E402

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "huggingface-hub",
            "safetensors", "pyarrow", "fsspec", "dill", "multiprocess", "numpy", "pyyaml", "liger-kernel", "vllm")


class Report:
    """One JSON line per section, on stdout and (when --out is given) in a file, written as each section ends."""

    def __init__(self, out: Path | None, *, device: str, smoke: bool) -> None:
        self.out, self.device, self.smoke = out, device, smoke
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("", encoding="utf-8")

    def emit(self, line: dict) -> None:
        text = json.dumps({"bench": "gpu_check", **line, "device": self.device, "smoke": self.smoke},
                          ensure_ascii=False)
        print(text, flush=True)
        if self.out is not None:
            with self.out.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")


# --- environment ------------------------------------------------------------------------------------------------


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def environment_line() -> dict:
    import torch

    versions = {name: _version(name) for name in PACKAGES}
    pins = _pins()
    differs = {name: {"here": version, "constraints.txt": pins[name]} for name, version in versions.items()
               if version and name in pins and version.split("+")[0] != pins[name]}
    missing = [name for name in SECTION_A_NEEDS if versions[name] is None]
    for name in missing:
        print(f"gpu_check: {name} is not installed here; section a needs it: carry it as a wheel "
              "(bench/gpu_check.sh installs .whl/*.whl; docs/benchmarks.md lists them)", file=sys.stderr, flush=True)
    return {"section": "environment", "python": sys.version.split()[0], "cuda": torch.version.cuda,
            "versions": versions, "differs_from_constraints": differs, "missing_for_section_a": missing}


# --- section b: candidate generation -----------------------------------------------------------------------------


def generation_requests(count: int) -> list:
    """The demo campaign's prompts, each asking for its first response's language, as a generation job asks."""
    from annotation.languages import get_language
    from generation.backends.base import Request
    from generation.prompting import prompt_messages

    items = [json.loads(line) for line in DEMO_ITEMS.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = []
    for index in range(count):
        item = items[index % len(items)]
        language = get_language(item["responses"][0]["language"])
        messages = prompt_messages(item["prompt"]["text"], language_name=language.name,
                                   autonym=language.native_name)
        requests.append(Request(key=f"{item['external_id']}#{index}", messages=messages))
    return requests


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_generation(backend, requests: list, params) -> dict:
    """One generate() call over every request: wall time as a job sees it (rendering and decoding included)."""
    outputs = []
    _synchronize()
    began = time.perf_counter()
    throughput = backend.generate(requests, params, on_outputs=outputs.extend)
    _synchronize()
    wall = time.perf_counter() - began
    return {"prompts": len(requests), "outputs": len(outputs), "errors": sum(1 for o in outputs if o.error),
            "new_tokens": throughput.new_tokens, "wall_seconds": round(wall, 3),
            "prompts_per_s": round(len(requests) / wall, 2), "tokens_per_s": round(throughput.new_tokens / wall, 1),
            "in_generate_tokens_per_s": round(throughput.tokens_per_second or 0, 1)}


def vllm_unavailable() -> str | None:
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None:
        return ("vllm is not installed on this host (an optional extra: it pins its own torch, and its wheels are "
                "far larger than the 64 MiB a device call carries)")
    if not torch.cuda.is_available():
        return "no CUDA GPU here: vLLM needs one"
    try:
        import vllm  # noqa: F401
    except Exception as error:  # noqa: BLE001 - whatever a broken install raises, it is the reason to report
        return f"import vllm failed: {type(error).__name__}: {error}"[:500]
    return None


def section_b(args, sizes: Sizes, models: Models, device: str) -> dict:
    from evaluation.inference import ModelSpec
    from generation.backends.base import SamplingParams
    from generation.backends.transformers_backend import TransformersBackend

    model = models.get("generate")
    spec = ModelSpec(str(model))
    requests = generation_requests(sizes.gen_prompts)
    params = SamplingParams(max_new_tokens=sizes.max_new_tokens)  # a job's defaults: temperature 0.8, top_p 0.95
    backend = TransformersBackend(spec, label="gpu-check", batch_size=sizes.gen_batch_sizes[0])
    try:
        backend.generate(requests[:2], replace(params, max_new_tokens=4), on_outputs=lambda outputs: None)
        runs = []
        for batch_size in sizes.gen_batch_sizes:
            backend.batch_size = batch_size
            runs.append({"batch_size": batch_size, **timed_generation(backend, requests, params)})
    finally:
        backend.close()
    line = {"section": "b", "model": model_info(model), "max_new_tokens": sizes.max_new_tokens,
            "sampling": {"temperature": params.temperature, "top_p": params.top_p, "samples": 1},
            "transformers": runs, "vllm": vllm_figures(spec, requests, params)}
    best = max((run["tokens_per_s"] for run in runs), default=0)
    if line["vllm"].get("tokens_per_s") and best:
        line["vllm_to_transformers"] = round(line["vllm"]["tokens_per_s"] / best, 2)
    line["ok"] = all(run["errors"] == 0 and run["new_tokens"] > 0 for run in runs) and "error" not in line["vllm"]
    return line


def vllm_figures(spec, requests: list, params) -> dict:
    reason = vllm_unavailable()
    if reason:
        print(f"gpu_check: vLLM skipped: {reason}", file=sys.stderr, flush=True)
        return {"skipped": reason}
    from generation.backends.vllm_backend import VllmBackend

    try:
        backend = VllmBackend(spec, label="gpu-check-vllm", gpu_memory_utilization=0.6)
        try:
            backend.generate(requests[:2], replace(params, max_new_tokens=4), on_outputs=lambda outputs: None)
            return timed_generation(backend, requests, params)
        finally:
            backend.close()
    except Exception as error:  # noqa: BLE001 - reported in the line; the transformers figures stand
        return {"error": f"{type(error).__name__}: {error}"[:2000]}


# --- section c: evaluation --------------------------------------------------------------------------------------


def benchmark_examples(benchmark, count: int) -> list:
    root = benchmark.sample_root
    examples = [example for language in benchmark.languages(root) for example in benchmark.load(root, language)]
    return [examples[index % len(examples)] for index in range(count)]


def section_c(args, sizes: Sizes, models: Models, device: str) -> dict:
    from evaluation.benchmarks import Belebele, FloresFromEnglish
    from evaluation.inference import ModelSpec, Throughput, benchmark_prompt, generate, load_model, score_options

    model = models.get("generate")
    loaded = load_model(ModelSpec(str(model)))
    flores, belebele = FloresFromEnglish(), Belebele()
    to_generate = [benchmark_prompt(loaded, flores, example, max_new_tokens=sizes.max_new_tokens)
                   for example in benchmark_examples(flores, sizes.eval_prompts)]
    questions = benchmark_examples(belebele, sizes.eval_prompts)
    to_score = [benchmark_prompt(loaded, belebele, example) for example in questions]
    options = [list(example.options) for example in questions]
    generate(loaded, to_generate[:2], max_new_tokens=4, batch_size=2)  # warm-up: allocation, kernel choice
    score_options(loaded, to_score[:1], options[:1], batch_size=1)
    generated, scored = [], []
    for batch_size in sizes.eval_batch_sizes:
        throughput = Throughput()
        seconds = _timed(lambda size=batch_size, into=throughput: generate(
            loaded, to_generate, max_new_tokens=sizes.max_new_tokens, batch_size=size, throughput=into))
        generated.append({"batch_size": batch_size, "prompts": len(to_generate), "new_tokens": throughput.new_tokens,
                          "wall_seconds": round(seconds, 3), "tokens_per_s": round(throughput.new_tokens / seconds, 1),
                          "prompts_per_s": round(len(to_generate) / seconds, 2)})
        scores: list = []
        seconds = _timed(lambda size=batch_size, into=scores: into.extend(
            score_options(loaded, to_score, options, batch_size=size)))
        count = sum(len(choices) for choices in options)
        scored.append({"batch_size": batch_size, "prompts": len(to_score), "options": count,
                       "wall_seconds": round(seconds, 3), "options_per_s": round(count / seconds, 1),
                       "prompts_per_s": round(len(to_score) / seconds, 2),
                       "finite": all(value == value for row in scores for value in row)})
    return {"section": "c", "model": model_info(model), "generate": generated, "score_options": scored,
            "generate_benchmark": flores.name, "score_benchmark": belebele.name,
            "max_new_tokens": sizes.max_new_tokens,
            "ok": all(run["new_tokens"] > 0 for run in generated) and all(run["finite"] for run in scored)}


def _timed(work: Callable[[], object]) -> float:
    _synchronize()
    began = time.perf_counter()
    work()
    _synchronize()
    return time.perf_counter() - began


# --- main -------------------------------------------------------------------------------------------------------

SECTIONS = {"a": section_a, "b": section_b, "c": section_c}


def guarded(name: str, run: Callable[[], dict]) -> dict:
    """The section's line, or a line with its error: one section's failure never stops the next."""
    began = time.perf_counter()
    try:
        line = run()
    except Exception as error:  # noqa: BLE001 - reported in the section's line
        line = {"section": name, "ok": False, "error": f"{type(error).__name__}: {error}"[:2000],
                "traceback": traceback.format_exc()[-3000:]}
    finally:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {**line, "section_seconds": round(time.perf_counter() - began, 1)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the whole script on the CPU, tiny model, no figures")
    parser.add_argument("--sections", default="a,b,c", help="comma-separated, from a, b, c")
    parser.add_argument("--out", type=Path, help="also write every JSON line to this file")
    parser.add_argument("--batch-size", type=int, help="section a's micro-batch (default 16; smoke 2)")
    parser.add_argument("--seq-len", type=int, help="section a's max length (default 1024; smoke 64)")
    parser.add_argument("--steps", type=int, help="section a's steps per run (default 30; smoke 4)")
    parser.add_argument("--liger", action="store_true", help="Liger kernels on in both sides of section a")
    parser.add_argument("--launcher", choices=("accelerate", "python"), default="accelerate",
                        help="how section a starts each run: accelerate launch (default) or a plain python process")
    parser.add_argument("--keep", action="store_true", help="keep the models and runs (the folder is printed)")
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown or not args.sections:
        parser.error(f"--sections: unknown {', '.join(unknown) or '(none given)'}; choose from a, b, c")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU and none is visible here; --smoke runs the same code on the CPU "
              "with the tiny model", file=sys.stderr)
        return 2
    sizes = SMOKE_SIZES if args.smoke else GPU_SIZES
    overrides = {"batch_size": args.batch_size, "seq_len": args.seq_len, "steps": args.steps}
    sizes = replace(sizes, **{key: value for key, value in overrides.items() if value})
    device = "cpu (smoke run)" if args.smoke else torch.cuda.get_device_name()
    report = Report(args.out, device=device, smoke=args.smoke)
    report.emit(guarded("environment", environment_line))
    root = Path(tempfile.mkdtemp(prefix="crossfeed-gpu-check-"))
    models = Models(root, smoke=args.smoke)
    ok = True
    try:
        for name in args.sections:
            line = guarded(name, lambda name=name: SECTIONS[name](args, sizes, models, device))
            ok = ok and bool(line.get("ok"))
            report.emit(line)
    finally:
        if args.keep:
            print(f"gpu_check: models and runs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
