"""The vLLM backend's parts that run without vLLM: availability, the refusal, and merging a chain of adapters."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from evaluation.inference import ModelSpec, generate, load_model, render_prompt
from generation.backends.vllm_backend import VllmBackend, VllmUnavailable, merge_adapters, vllm_available

needs_no_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None and torch.cuda.is_available(),
                                   reason="vLLM and a GPU are here")


@needs_no_vllm
def test_vllm_is_not_available_here_and_the_backend_says_so(tiny_model_dir):
    assert vllm_available() is False
    with pytest.raises(VllmUnavailable, match="use the transformers backend"):
        VllmBackend(ModelSpec(str(tiny_model_dir)), label="tiny")


def _adapter(base: str, folder, seed: int) -> str:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    # init_lora_weights=False: random B as well as A, so each adapter changes the model's answers.
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return str(folder)


def test_a_chain_of_adapters_merges_into_a_folder_that_answers_as_evaluation_does(tiny_model_dir, tmp_path):
    base = str(tiny_model_dir)
    chain = (_adapter(base, tmp_path / "sft", 1), _adapter(base, tmp_path / "dpo", 2))
    merged = merge_adapters(ModelSpec(base, adapters=chain), work_dir=str(tmp_path))
    assert merged.startswith(str(tmp_path)) and (tmp_path / merged / "config.json").is_file()

    def answers(spec: ModelSpec) -> list[str]:
        loaded = load_model(spec, device="cpu")
        prompts = [render_prompt(loaded, [{"role": "user", "content": text}]) for text in ("Habari?", "Jambo")]
        return [g.text for g in generate(loaded, prompts, max_new_tokens=8)]

    assert answers(ModelSpec(merged)) == answers(ModelSpec(base, adapters=chain))
    assert answers(ModelSpec(merged)) != answers(ModelSpec(base))  # the adapters did change the model
