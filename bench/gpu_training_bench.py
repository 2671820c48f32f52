"""GPU throughput of SFT and DPO steps: a randomly initialised ~1B-parameter Llama in bf16, with and without Liger
kernels. Prints tokens/s and model FLOPs utilisation (MFU) per configuration, one JSON line each.

    python bench/gpu_training_bench.py                 # on a host with one CUDA GPU; about 3-5 minutes
    python bench/gpu_training_bench.py --steps 10 --seq-len 1024
    python bench/gpu_training_bench.py --smoke --steps 2 --seq-len 64   # the code path on a CPU, no figures

Prepared for the GPU hosts lent to some sessions; it refuses to run without CUDA. It uses the same TRL trainers and
LoRA setup as training/scripts (so Liger is TRL's `use_liger_kernel`), on synthetic token data, to measure the
kernels rather than data loading.

MFU = achieved model FLOPs / the GPU's peak dense bf16 FLOPs. Forward FLOPs per token F = 2·N + 4·L·d·T (N the
parameters without the input embedding, which is a lookup; L layers, d hidden size, T sequence length: the attention
scores and values, counted over the full square as PaLM's appendix B does). Full fine-tuning costs 3F per token
(forward, then gradients of activations and of weights); LoRA skips the frozen weights' gradients, so the work it
needs is 2F. DPO trains on the chosen and the rejected sequence and also runs the reference model forward on both:
2F + F = 3F per processed token (4F under the full fine-tuning convention). `mfu` counts the work LoRA needs;
`mfu_full_ft_convention` counts as if every weight were trained, which is the figure published MFUs use.
Recomputation for activation checkpointing is not counted (it is overhead, not model work).
"""

from __future__ import annotations

import argparse
import json
import time

# Peak dense bf16 tensor FLOP/s by device name substring (vendor data sheets).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def llama_1b():
    from transformers import LlamaConfig

    # ~1.1B parameters: 22 layers × hidden 2048 (TinyLlama's shape), vocab 32,000.
    return LlamaConfig(vocab_size=32_000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                       num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=4096)


def peak_flops(name: str) -> float | None:
    return next((value for key, value in PEAK_BF16.items() if key in name), None)


def run(kind: str, liger: bool, args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32_000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4) if args.smoke else llama_1b()
    model = LlamaForCausalLM(config).to(dtype=torch.float32 if args.smoke else torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    rows = args.batch_size * args.steps
    length = args.seq_len
    matmul_params = params - model.get_input_embeddings().weight.numel()
    forward_flops = 2 * matmul_params + 4 * config.num_hidden_layers * config.hidden_size * length
    tokenizer = _tokenizer(PreTrainedTokenizerFast)
    common = {"output_dir": f"/tmp/gpu-bench-{kind}-{liger}", "max_steps": args.steps, "bf16": not args.smoke,
              "use_cpu": args.smoke,
              "per_device_train_batch_size": args.batch_size, "learning_rate": 1e-4, "logging_steps": 1,
              "report_to": "none", "save_strategy": "no", "use_liger_kernel": liger,
              "activation_checkpointing": True, "max_length": length}
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                      task_type="CAUSAL_LM")
    text = " ".join(["token"] * (length - 1))  # + EOS = length tokens per sequence
    if kind == "sft":
        data = Dataset.from_dict({"text": [text] * rows})
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, packing=False), train_dataset=data,
                             processing_class=tokenizer, peft_config=lora)
        tokens_per_step = args.batch_size * length
        flops_per_token, full_ft_flops_per_token = 2 * forward_flops, 3 * forward_flops
    else:
        half = " ".join(["token"] * (length // 4))
        data = Dataset.from_dict({"prompt": [half] * rows, "chosen": [half] * rows, "rejected": [half] * rows})
        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=0.1), train_dataset=data,
                             processing_class=tokenizer, peft_config=lora)
        # Chosen and rejected sequences are each prompt + completion = length / 2 tokens: length tokens per pair.
        tokens_per_step = args.batch_size * length
        flops_per_token, full_ft_flops_per_token = 3 * forward_flops, 4 * forward_flops
    synchronize = torch.cuda.synchronize if not args.smoke else (lambda: None)
    clock = step_clock(synchronize)
    trainer.add_callback(clock)
    synchronize()
    start = time.perf_counter()
    trainer.train()
    synchronize()
    seconds = time.perf_counter() - start
    # Steady state: from the end of the warm-up steps (CUDA context, kernel autotuning, Triton compiles) to the last.
    warm = min(WARMUP_STEPS, len(clock.ends) - 1)
    steady_seconds = clock.ends[-1] - clock.ends[warm - 1] if warm >= 1 else seconds
    steady_steps = len(clock.ends) - warm if warm >= 1 else args.steps
    device = "cpu (smoke run)" if args.smoke else torch.cuda.get_device_name()
    tokens_per_s = tokens_per_step * steady_steps / steady_seconds
    peak = peak_flops(device)
    return {"bench": "gpu_training", "kind": kind, "liger": liger, "device": device, "parameters": params,
            "steps": args.steps, "timed_steps": steady_steps, "batch_size": args.batch_size, "seq_len": length,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens_per_s),
            "model_tflops_per_s": round(tokens_per_s * flops_per_token / 1e12, 1),
            "mfu": round(tokens_per_s * flops_per_token / peak, 3) if peak else None,
            "mfu_full_ft_convention": round(tokens_per_s * full_ft_flops_per_token / peak, 3) if peak else None,
            "peak_memory_gib": None if args.smoke else round(torch.cuda.max_memory_allocated() / 2**30, 1)}


WARMUP_STEPS = 3


def step_clock(synchronize):
    """A TrainerCallback that stamps the end of each optimizer step (after the GPU has finished it)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            synchronize()
            self.ends.append(time.perf_counter())

    clock = StepClock()
    clock.ends = []
    return clock


def _tokenizer(fast_class):
    from tokenizers import Tokenizer, models, pre_tokenizers

    backend = Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1, "token": 2, "<unk>": 3}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = fast_class(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true",
                        help="a 2-layer model on the CPU: checks the code path here, measures nothing")
    args = parser.parse_args()
    import importlib.util

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        raise SystemExit("gpu_training_bench needs a CUDA GPU; none is visible here (--smoke runs a tiny CPU check)")
    kernels = [False, True] if importlib.util.find_spec("liger_kernel") else [False]
    for kind in ("sft", "dpo"):
        for liger in kernels:
            print(json.dumps(run(kind, liger, args)), flush=True)
            if not args.smoke:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    if len(kernels) == 1:
        print(json.dumps({"bench": "gpu_training", "note": "liger_kernel is not installed: only the runs without"}))


if __name__ == "__main__":
    main()
