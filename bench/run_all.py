"""`make bench`: every benchmark in bench/, then one table of figures with the baseline beside each.

    .venv/bin/python bench/run_all.py            # the issue's sizes (takes several minutes)
    .venv/bin/python bench/run_all.py --quick    # smaller sizes, for a smoke run

Each benchmark is its own script that prints JSON lines; they are kept in var/bench/<timestamp>.jsonl as well.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BENCHES = {
    # name: (script, full arguments, quick arguments)
    "annotate_load": ("annotate_load.py", [], ["--concurrency", "16,64", "--seconds", "8", "--items", "4000"]),
    "request_cost": ("request_cost.py", [], ["--rounds", "200"]),
    # The annotators' own path (browser session, htmx form posts) against the API path, same server, same run.
    "page_flow": ("page_flow_bench.py", [], ["--seconds", "8", "--items", "4000"]),
    "page_cost": ("page_flow_bench.py", ["--cost"], ["--cost", "--rounds", "200", "--items", "4000"]),
    "write_lock": ("write_lock.py", [], ["--transactions", "300"]),
    "export": ("export_bench.py", ["--postgres"], ["--items", "20000"]),
    "size": ("size_bench.py", [], ["--items", "10000"]),
    "import": ("import_bench.py", [], ["--items", "20000", "--annotators", "8"]),
    "training": ("training_bench.py", [], []),
    "evaluation": ("evaluation_bench.py", [], ["--after-training-max-new-tokens", "64"]),
    # Log-likelihood scoring against lm-evaluation-harness's HF backend (its own virtualenv, made on the first run).
    "loglik": ("loglik_bench.py", [], ["--rounds", "3", "--batch-sizes", "8"]),
    "generation": ("generation_bench.py", [], ["--prompts", "32", "--batch-sizes", "32"]),
    "langid": ("langid_bench.py", [], []),
    # The seq2seq translator on CTranslate2 against transformers, tiny MT model, one CPU thread each.
    "seq2seq": ("seq2seq_bench.py", [], ["--sentences", "64", "--rounds", "1"]),
    "gpu_check": ("gpu_check.py", [], ["--steps", "12"]),
    "gpu_training": ("gpu_training_bench.py", [], ["--steps", "8"]),
}
NEEDS_CUDA = {"gpu_check", "gpu_training"}


def cuda_available() -> bool:
    code = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    return probe.returncode == 0


def row(line: dict) -> tuple[str, str, str, str, str] | None:
    """(benchmark, figure, baseline, ratio, target) for the table."""
    kind = line.get("bench")
    if kind == "annotate_load" and "skipped" not in line:
        return (f"annotate {line['database']} C={line['annotators']}",
                f"{line['submits_per_s']} submits/s, p99 next {line['next']['p99_ms']} ms / submit "
                f"{line['submit']['p99_ms']} ms, errors {sum(line['errors'].values())}, "
                f"integrity {'ok' if line['integrity']['ok'] else 'VIOLATED'}",
                f"floor {line['floor_iterations_per_s']} it/s", f"{line['fraction_of_floor']} of floor",
                "C=64 SQLite: >= 0.5, p99 <= 250 ms")
    if kind == "write_lock":
        ours = line["mode"] == "write_lock"
        return (f"SQLite write transactions, {line['processes']} processes, {line['mode'].replace('_', ' ')}",
                f"{line['transactions_per_s']} tx/s, wait p99 {line['wait_p99_ms']} ms / max "
                f"{line['wait_max_ms']} ms, {line['waits_over_100ms']} waits > 100 ms",
                "busy handler (line above)" if ours else "", "", "-")
    if kind == "write_lock_ratio":
        return None
    if kind == "page_flow":
        return (f"annotators' page path, {line['annotators']} annotators (session, htmx form posts)",
                f"{line['page_submits_per_s']} submits/s, p50/p99 {line['page_submit']['p50_ms']}/"
                f"{line['page_submit']['p99_ms']} ms, errors {sum(line['page_errors'].values())}",
                f"API path {line['api_submits_per_s']} submits/s, p99 next {line['api_next']['p99_ms']} / submit "
                f"{line['api_submit']['p99_ms']} ms", f"{line['ratio']} of API", ">= 0.7")
    if kind == "page_cost":
        return ("CPU per judged item, page submit vs API round, in process", f"{line['page_submit_cpu_ms']} ms",
                f"API next + submit: {line['api_round_cpu_ms']} ms", f"{line['api_over_page']} of API", "-")
    if kind == "request_cost":
        return ("CPU per annotator round (next + submit), in process", f"{line['round_cpu_ms']} ms",
                f"floor view x2: {line['floor_two_calls_cpu_ms']} ms", f"{line['ratio']}x", "-")
    if kind == "export":
        return (f"export {line['database']} {line['format']} {line['judgments']:,} judgments",
                f"{line['seconds']} s, {line['peak_rss_mib']} MiB peak, {line['rows']:,} rows",
                f"floor {line['floor_seconds']} s", f"{line['ratio_to_floor']}x", "< 60 s, < 1536 MiB")
    if kind == "import_memory":
        return (f"import {line['items']:,} items ({line['file_mib']} MiB)",
                f"{line['seconds']} s, {line['peak_rss_mib']} MiB peak",
                f"json parse {line['baseline_parse_seconds']} s, {line['baseline_peak_rss_mib']} MiB",
                f"{line['ratio_seconds']}x", "bounded memory")
    if kind == "import_bench":
        writing, before = line["writing"], line["before_import"]
        errors = sum(writing["errors"].values())
        return (f"annotate during an import of {line['items']:,} items ({line['annotators']} annotators)",
                f"import {line['import']['seconds']} s; while writing: p99 next {writing['next']['p99_ms']} ms / "
                f"submit {writing['submit']['p99_ms']} ms, {errors} errors",
                f"no import: p99 next {before['next']['p99_ms']} ms", "",
                "p99 < 1000 ms, no 503")
    if kind == "page_weight":
        return ("annotation page 8 x 20,000 chars", f"{line['partial_kib']} KiB HTML, {line['render_ms']} ms",
                f"text {line['text_utf8_kib']} KiB", f"{line['overhead_ratio']}x", "-")
    if kind == "gpu_check":  # the environment line is in the raw figures only
        return gpu_check_row(line) if line.get("section") in ("a", "b", "c") else None
    if kind == "gpu_training" and "note" not in line:
        return (f"GPU {line['kind']}{' + Liger' if line['liger'] else ''} {line['batch_size']}x{line['seq_len']}",
                f"{line['tokens_per_s']:,} tokens/s, {line['model_tflops_per_s']} TFLOP/s on {line['device']}",
                "peak bf16 of the card", f"MFU {line['mfu']}", "-")
    if kind == "generation":
        return (f"generation job backend, tiny model, CPU, batch {line['batch_size']} ({line['prompts']} prompts)",
                f"{line['backend_tokens_per_s']:,} tokens/s, {line['backend_prompts_per_s']} prompts/s",
                f"one-at-a-time generate: {line['one_at_a_time_tokens_per_s']:,} tokens/s", f"{line['ratio']}x",
                f">= {line['target_ratio']}x")
    if kind == "loglik":
        title = (f"log-likelihood scoring, tiny model, CPU, batch {line['batch_size']} ({line['requests']} requests, "
                 f"{line['threads']} thread)")
        figure = f"{line['crossfeed_requests_per_s']} requests/s, {line['crossfeed_tokens_per_s']:,} tokens/s"
        if "skipped" in line:
            return title, figure, line["skipped"][:110], "", ">= 1.0x"
        return (title, f"{figure} (max |diff| {line['max_abs_loglik_difference']})",
                f"lm-eval HFLM: {line['lm_eval_requests_per_s']} requests/s, "
                f"{line['lm_eval_tokens_per_s']:,} tokens/s",
                f"{line['ratio']}x (CPU {line['ratio_by_cpu_time']}x)", f">= {line['target_ratio']}x")
    if kind == "evaluation_after_training":
        share = ", ".join(f"{name} {value:.1%}" for name, value in line["share"].items())
        return (f"evaluation after training, {line['models']} models, sample sets, "
                f"{line['max_new_tokens']} new tokens",
                f"{line['wall_seconds']} s: {share}", "", "", "-")
    if kind == "seq2seq":
        return (f"seq2seq translator, tiny MT model, CPU, {line['threads']} thread, batch {line['batch_size']} "
                f"({line['sentences']} sentences)",
                f"CTranslate2 {line['ctranslate2_sentences_per_s']} sentences/s "
                f"({line['identical_translations']}/{line['sentences']} identical)",
                f"transformers {line['transformers_sentences_per_s']} sentences/s", f"{line['ratio']}x", "-")
    if kind == "langid":
        coverage = "-" if line["coverage"] is None else f"{line['coverage']:.1%}"
        accuracy = "-" if line["accuracy"] is None else f"{line['accuracy']:.1%}"
        return (f"off-target detector, {line['scope']} ({line['cases']} cases)",
                f"coverage {coverage}, accuracy {accuracy}, "
                f"nothing-to-judge {line['none_right']}/{line['none_cases']}",
                f"true rate {line['true_off_target_rate']}", f"measured {line['measured_off_target_rate']}",
                "floors in tests/evaluation/test_metrics_langid_labelled.py" if line["scope"] == "all" else "-")
    if kind is not None:
        figure = ", ".join(f"{k}={v}" for k, v in line.items() if k not in {"bench", "target"})
        return (kind, figure[:110], "", str(line.get("ratio", "")), str(line.get("target", "")))
    return None


def gpu_check_row(line: dict) -> tuple[str, str, str, str, str]:
    """One row per section of bench/gpu_check.py (docs/benchmarks.md, GPU section)."""
    name = {"a": "sft.py/dpo.py vs bare TRL", "b": "candidate generation", "c": "evaluation"}[line["section"]]
    title = f"GPU check {line['section']}: {name} on {line['device']}"
    if "error" in line or "skipped" in line:
        problem = f"error: {line['error']}" if "error" in line else f"skipped: {line['skipped']}"
        return title, problem[:110], "", "", "-"
    if line["section"] == "a":
        sft, dpo = line["sft"], line["dpo"]
        return (title, f"SFT {sft['crossfeed']['tokens_per_s']} tokens/s, DPO {dpo['crossfeed']['tokens_per_s']}",
                f"bare TRL: SFT {sft['bare_trl']['tokens_per_s']}, DPO {dpo['bare_trl']['tokens_per_s']}",
                f"SFT {sft['ratio']}x, DPO {dpo['ratio']}x", f">= {sft['target']}x")
    if line["section"] == "b":
        runs = ", ".join(f"batch {run['batch_size']}: {run['tokens_per_s']} tokens/s, {run['prompts_per_s']} prompts/s"
                         for run in line["transformers"])
        vllm = line["vllm"]
        other = f"vLLM {vllm['tokens_per_s']} tokens/s" if "tokens_per_s" in vllm else "vLLM not run"
        return title, f"transformers {runs}", other, str(line.get("vllm_to_transformers", "")), "-"
    runs = ", ".join(f"batch {gen['batch_size']}: {gen['tokens_per_s']} tokens/s, {score['options_per_s']} options/s"
                     for gen, score in zip(line["generate"], line["score_options"], strict=True))
    return title, runs, "", "", "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(BENCHES))
    args = parser.parse_args()
    chosen = [name for name in BENCHES if not args.only or name in args.only.split(",")]
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    record = out_dir / f"{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    rows = []
    has_cuda = cuda_available() if NEEDS_CUDA & set(chosen) else False
    with record.open("w", encoding="utf-8") as log:
        for name in chosen:
            script, full, quick = BENCHES[name]
            if not (ROOT / "bench" / script).is_file():
                rows.append((name, "not present", "", "", ""))
                continue
            if name in NEEDS_CUDA and not has_cuda:
                rows.append((name, "skipped: no CUDA GPU on this host (figures from an H200: docs/benchmarks.md)",
                             "", "", ""))
                continue
            command = [sys.executable, str(ROOT / "bench" / script), *(quick if args.quick else full)]
            print(f"== {name}: {' '.join(command[1:])}", flush=True)
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            lines = [json.loads(text) for text in done.stdout.splitlines() if text.startswith("{")]
            for line in lines:
                log.write(json.dumps(line) + "\n")
                print(json.dumps(line), flush=True)
            if done.returncode != 0:
                rows.append((name, f"FAILED (exit {done.returncode}): {done.stderr.strip()[-200:]}", "", "", ""))
            rows.extend(filter(None, map(row, lines)))
    widths = [max(len(str(r[i])) for r in [("benchmark", "figure", "baseline", "ratio", "target"), *rows])
              for i in range(5)]
    print()
    for values in [("benchmark", "figure", "baseline", "ratio", "target"), *rows]:
        print(" | ".join(str(value).ljust(width) for value, width in zip(values, widths, strict=True)))
    print(f"\nraw figures: {record}")


if __name__ == "__main__":
    main()
