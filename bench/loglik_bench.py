"""Log-likelihood scoring: Crossfeed's `score_options` against lm-evaluation-harness's HF backend
(`lm_eval.models.huggingface.HFLM.loglikelihood`), same requests, same model folder, same threads, same run.

    .venv/bin/python bench/loglik_bench.py                        # batches of 8 and 32, 7 alternating rounds each
    .venv/bin/python bench/loglik_bench.py --batch-sizes 8 --rounds 3 --threads 2
    .venv/bin/python bench/loglik_bench.py --lmeval-python /opt/lmeval/bin/python   # an lm-eval you installed

The requests are every option of the shipped classification sample sets (XCOPA, PAWS-X, their seed-format
variants, Belebele) as an evaluation run builds them, each sent to both sides as the plain (context, continuation)
strings lm-eval's `loglikelihood` takes (a chat-templated prompt is a context that starts with BOS), so both encode
them the same way (lm-eval's `_encode_pair`). The tiny local model is built into var/bench/loglik/tiny.

lm-eval cannot share Crossfeed's virtualenv (its pytablewriter needs python-dateutil < 3; we pin 4), so it runs in
its own, var/bench/lmeval-venv, created on the first run (about 2 minutes, 1.8 GiB) with lm-eval 0.4.13 and the
same torch, transformers, tokenizers and accelerate as ours, under our constraints.txt less python-dateutil. torch is
pinned to the exact build installed here (e.g. 2.13.0+cpu), so pip can only take the CPU wheel that `make install`
took, never a CUDA build. There lm-eval runs as a worker process: it loads the model once, then scores the
requests each time it is asked, so the two sides alternate round by round while the other waits; only the scoring
call is timed on either side (not imports, model loading or writing the requests). Crossfeed's token cache is
emptied before each of its rounds, so each round tokenizes as an evaluation run does once.

Prints one JSON line per batch size: requests/s and request tokens/s (context + continuation, the same count for
both) of each side, the median over the rounds of wall and of CPU time, their ratios (target: Crossfeed not slower,
ratio >= 1), and the largest difference between the two sides' log-likelihoods.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LM_EVAL_VERSION = "0.4.13"
# lm-eval 0.4.13's tree pulls pytablewriter -> DataProperty/typepy, which need python-dateutil < 3 (we pin 4.0.0).
NOT_OUR_PINS = {"python-dateutil", "torch"}


# --- the lm-eval side: runs inside var/bench/lmeval-venv, imports nothing of Crossfeed ---------------------------


def lmeval_worker(args) -> None:
    """Load HFLM once, then answer each `run <batch size>` line on stdin with one timed `loglikelihood` call."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(args.threads)
    pairs = json.loads(Path(args.requests).read_text(encoding="utf-8"))
    began = time.perf_counter()
    lm = HFLM(pretrained=args.model, backend="causal", device="cpu", dtype="float32", batch_size=1)
    print(json.dumps({"ready": True, "load_seconds": round(time.perf_counter() - began, 2),
                      "lm_eval": LM_EVAL_VERSION, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] != "run":
            break
        lm.batch_size_per_gpu = int(command[1])
        instances = [Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=0)
                     for context, continuation in pairs]
        wall, cpu = time.perf_counter(), time.process_time()
        results = lm.loglikelihood(instances, disable_tqdm=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(json.dumps({"wall": wall, "cpu": cpu, "scores": [value for value, _ in results]}), flush=True)


# --- the virtualenv for lm-eval ----------------------------------------------------------------------------------


def installed(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def lmeval_venv(folder: Path) -> Path:
    """The python of a virtualenv with lm-eval and our torch/transformers, created once; raises RuntimeError saying
    why when it cannot be."""
    pins = {"lm-eval": LM_EVAL_VERSION, **{name: installed(name)
                                           for name in ("torch", "transformers", "tokenizers", "accelerate")}}
    spec = " ".join(f"{name}=={pin}" for name, pin in pins.items())
    python, stamp = folder / "bin" / "python", folder / ".crossfeed-spec"
    if python.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == spec:
        return python
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    constraints = folder.parent / "lmeval-constraints.txt"
    ours = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    constraints.write_text("\n".join(line for line in ours
                                     if line.split("==")[0].strip().lower() not in NOT_OUR_PINS) + "\n",
                           encoding="utf-8")
    print(f"creating {folder} for lm-evaluation-harness ({spec}); takes a few minutes once", file=sys.stderr,
          flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", str(folder)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(constraints),
              *spec.split()]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
            raise RuntimeError(f"`{' '.join(step[-6:])}` failed: {' '.join(errors[-4:])[-400:]}")
    check = subprocess.run([str(python), "-c", "import torch, lm_eval.models.huggingface; "
                            "print(torch.__version__, torch.version.cuda)"], capture_output=True, text=True,
                           check=False)
    got = check.stdout.split()
    if check.returncode != 0 or got[:1] != [pins["torch"]] or (torch_is_cpu() and got[1:] != ["None"]):
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"the new virtualenv has torch {' '.join(got) or '?'} where ours is {pins['torch']} "
                           f"(CPU build: {torch_is_cpu()}): {check.stderr.strip()[-300:]}")
    stamp.write_text(spec, encoding="utf-8")
    return python


def torch_is_cpu() -> bool:
    import torch

    return torch.version.cuda is None


# --- requests and Crossfeed's side ---------------------------------------------------------------------------------


def build_model(folder: Path) -> Path:
    os.environ.setdefault("CROSSFEED_VAR_DIR", str(folder / "var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    import django

    django.setup()
    from training.services.registry import tiny_model_build

    tiny_model_build(output_dir=folder / "tiny", register=False)  # the same model the tests and demos use
    return folder / "tiny"


def sample_requests(loaded) -> list[tuple[str, list[str]]]:
    """(context, continuations) per classification sample example, as lm-eval's loglikelihood takes them."""
    from evaluation.benchmarks import all_benchmarks
    from evaluation.inference import benchmark_prompt

    questions = []
    for benchmark in all_benchmarks():
        if benchmark.generates:
            continue
        for language in benchmark.languages(benchmark.sample_root):
            for example in benchmark.load(benchmark.sample_root, language):
                prompt = benchmark_prompt(loaded, benchmark, example)
                questions.append((prompt.text, [prompt.answer_prefix + option for option in example.options]))
    return questions


def crossfeed_round(loaded, questions, batch_size: int) -> tuple[float, float, list[float]]:
    from evaluation.inference import Prompt, TokenCache, score_options

    loaded.token_cache = TokenCache()  # each round tokenizes as an evaluation run does once
    prompts = [Prompt(context, templated=False) for context, _ in questions]
    wall, cpu = time.perf_counter(), time.process_time()
    scores = score_options(loaded, prompts, [options for _, options in questions], batch_size=batch_size)
    return time.perf_counter() - wall, time.process_time() - cpu, [value for row in scores for value in row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per side and batch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lmeval-python", default="", help="a python with lm-eval installed (default: create "
                                                            "var/bench/lmeval-venv)")
    parser.add_argument("--lmeval-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--requests", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # One core means one core, on both sides: numpy's BLAS and torch's pools must not spread over the others.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    if args.lmeval_worker:
        lmeval_worker(args)
        return
    sys.path.insert(0, str(ROOT))
    import torch

    from evaluation.inference import ModelSpec, Prompt, _encode_pair, load_model

    torch.set_num_threads(args.threads)
    work = ROOT / "var" / "bench" / "loglik"
    work.mkdir(parents=True, exist_ok=True)
    loaded = load_model(ModelSpec(str(build_model(work))), device="cpu")
    questions = sample_requests(loaded)
    pairs = [(context, option) for context, options in questions for option in options]
    request_file = work / "requests.json"
    request_file.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    tokens = sum(len(context) + len(continuation) for context, continuation in
                 (_encode_pair(loaded, Prompt(c, templated=False), o) for c, o in pairs))
    base = {"bench": "loglik", "model": "tiny-llama (2 layers, hidden 64, random weights)", "device": "cpu",
            "threads": args.threads, "requests": len(pairs), "questions": len(questions), "request_tokens": tokens,
            "rounds": args.rounds}

    worker, skipped = None, ""
    try:
        python = Path(args.lmeval_python) if args.lmeval_python else lmeval_venv(ROOT / "var" / "bench" /
                                                                                 "lmeval-venv")
        worker = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--lmeval-worker", "--model", str(work / "tiny"),
             "--requests", str(request_file), "--threads", str(args.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work)
        hello = worker.stdout.readline()
        if not hello.startswith("{"):
            raise RuntimeError(f"the lm-eval worker ({python}) stopped before it was ready (its error is above)")
        base["lmeval_load_seconds"] = json.loads(hello)["load_seconds"]
    except (RuntimeError, OSError) as exc:
        skipped = (f"lm-evaluation-harness {LM_EVAL_VERSION} not run: {exc}. Install it by hand in its own "
                   "virtualenv and pass --lmeval-python PATH; Crossfeed's side alone is printed.")
        if worker is not None:
            worker.kill()
            worker.wait()
            worker = None

    def lmeval_round(batch_size: int) -> tuple[float, float, list[float]]:
        worker.stdin.write(f"run {batch_size}\n")
        worker.stdin.flush()
        answer = json.loads(worker.stdout.readline())
        return answer["wall"], answer["cpu"], answer["scores"]

    try:
        for batch_size in [int(size) for size in args.batch_sizes.split(",")]:
            crossfeed_round(loaded, questions, batch_size)  # warm-up: first calls allocate
            if worker is not None:
                lmeval_round(batch_size)
            ours, theirs = [], []
            for _ in range(args.rounds):  # alternate, so a busy spell of the machine hits both sides
                ours.append(crossfeed_round(loaded, questions, batch_size))
                if worker is not None:
                    theirs.append(lmeval_round(batch_size))
            line = {**base, "batch_size": batch_size, **figures("crossfeed", ours, len(pairs), tokens)}
            if theirs:
                line.update(figures("lm_eval", theirs, len(pairs), tokens))
                line["ratio"] = round(line["crossfeed_requests_per_s"] / line["lm_eval_requests_per_s"], 2)
                line["ratio_by_cpu_time"] = round(line["lm_eval_cpu_seconds"] / line["crossfeed_cpu_seconds"], 2)
                largest = max(abs(a - b) for a, b in zip(ours[0][2], theirs[0][2], strict=True))
                line["max_abs_loglik_difference"] = float(f"{largest:.2e}")
                line["target_ratio"] = 1.0
            else:
                line["skipped"] = skipped
            print(json.dumps(line), flush=True)
    finally:
        if worker is not None:
            worker.stdin.close()
            worker.wait(timeout=60)


def figures(side: str, rounds: list[tuple[float, float, list[float]]], requests: int, tokens: int) -> dict:
    wall = statistics.median(r[0] for r in rounds)
    cpu = statistics.median(r[1] for r in rounds)
    return {f"{side}_requests_per_s": round(requests / wall, 1), f"{side}_tokens_per_s": round(tokens / wall),
            f"{side}_seconds": round(wall, 4), f"{side}_cpu_seconds": round(cpu, 4)}


if __name__ == "__main__":
    main()
