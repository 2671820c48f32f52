"""Generation with vLLM on a GPU host: optional, used only where `import vllm` works and CUDA is there. Django-free.

vLLM is not a dependency of Crossfeed (it pins its own torch); a GPU host that wants it installs it beside the worker
(`pip install vllm` in a separate environment is not enough: the worker must import it). Tests never need it.

Prompts are rendered and encoded exactly as the transformers backend does (the tokenizer with the chat template
training used, evaluation.inference's rule), and handed to vLLM as token ids, so both backends see the same tokens.
Sampling is the same too: temperature and top_p alone (top-k off, no repetition penalty), greedy at temperature 0,
`n` samples per prompt, and a seed per request derived from params.seed and the request's key.

Adapters. A version with one adapter (an SFT version, or a DPO version trained directly on the base) is served as a
LoRA adapter through vLLM's LoRARequest, without copying the model. vLLM applies one LoRA per request and cannot
stack a chain (a DPO version is trained on top of its merged SFT parent), so for a chain of two or more the adapters
are merged into the base weights with PEFT, in order, as evaluation merges them, into a temporary folder (about the
size of the base model; under `work_dir` when given, removed by close()), and vLLM serves that folder.

Batches: vLLM batches continuously by itself; requests are handed over `chunk_size` at a time so outputs are saved
and should_stop() is asked between chunks. Out of memory does not happen per batch (vLLM reserves its cache at
start, `gpu_memory_utilization`); a model that does not fit fails when the backend is made.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from evaluation.inference import DEFAULT_CONTEXT, ModelSpec, _fit, _local_folder, encode_prompt, render_prompt, torch
from generation.backends.base import GenerationStopped, Output, Request, SamplingParams, Throughput, never_stop


@functools.cache
def vllm_available() -> bool:
    """True where vLLM imports and a CUDA GPU is visible. Cheap checks first: importing vLLM takes seconds."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        if not torch.cuda.is_available():
            return False
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install is "not available", whatever it raises
        return False
    return True


class VllmUnavailable(RuntimeError):
    """vLLM is not installed here, or there is no CUDA GPU."""


class VllmBackend:
    def __init__(self, spec: ModelSpec, *, label: str, chunk_size: int = 256, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, work_dir: str | None = None) -> None:
        if not vllm_available():
            raise VllmUnavailable("vLLM is not installed on this worker or it has no CUDA GPU; use the transformers "
                                  "backend (the default) or install vllm on a GPU worker")
        from transformers import AutoTokenizer
        from vllm import LLM

        from evaluation.inference import LoadedModel
        from training.scripts.chat_templates import use_chat_template

        self.label = label
        self.chunk_size = max(1, chunk_size)
        self._merged_dir: str | None = None
        model_path, lora = self._model_and_lora(spec, work_dir)
        tokenizer = AutoTokenizer.from_pretrained(spec.base_path, local_files_only=True)
        template = use_chat_template(tokenizer, name=spec.chat_template_name, override=spec.chat_template or None)
        options = {"model": model_path, "tokenizer": spec.base_path, "gpu_memory_utilization": gpu_memory_utilization,
                   "max_model_len": max_model_len}
        if lora is not None:
            options |= {"enable_lora": True, "max_loras": 1, "max_lora_rank": _lora_rank(lora)}
        self._llm = LLM(**{key: value for key, value in options.items() if value is not None})
        self._lora = self._lora_request(lora) if lora is not None else None
        context = _context_length(self._llm, max_model_len)
        # Only the tokenizer is used from it: render_prompt and encode_prompt need no model.
        self._loaded = LoadedModel(model=None, tokenizer=tokenizer, device=torch.device("cpu"),
                                   context_length=int(context), chat_template=template)

    def _model_and_lora(self, spec: ModelSpec, work_dir: str | None) -> tuple[str, str | None]:
        _local_folder(spec.base_path, "base model")
        for adapter in spec.adapters:
            _local_folder(adapter, "adapter")
        if len(spec.adapters) <= 1:
            return spec.base_path, (spec.adapters[0] if spec.adapters else None)
        self._merged_dir = merge_adapters(spec, work_dir=work_dir)
        return self._merged_dir, None

    def _lora_request(self, adapter: str):  # noqa: ANN202 - vllm's type, imported lazily
        from vllm.lora.request import LoRARequest

        return LoRARequest(f"{self.label}-adapter", 1, adapter)

    def close(self) -> None:
        self._llm = None
        if self._merged_dir:
            shutil.rmtree(self._merged_dir, ignore_errors=True)
            self._merged_dir = None

    def generate(self, requests: Sequence[Request], params: SamplingParams, *,
                 on_outputs: Callable[[list[Output]], None], should_stop: Callable[[], bool] = never_stop
                 ) -> Throughput:
        if self._llm is None:
            raise RuntimeError(f"the generator {self.label} was closed; create a new backend to generate again")
        throughput = Throughput()
        room = max(1, self._loaded.context_length - params.max_new_tokens)
        for start in range(0, len(requests), self.chunk_size):
            if should_stop():
                raise GenerationStopped(f"stopped after {start} of {len(requests)} prompts")
            chunk = requests[start:start + self.chunk_size]
            prompts = [{"prompt_token_ids": _fit(encode_prompt(self._loaded, render_prompt(self._loaded, r.messages)),
                                                 room, self._loaded.tokenizer.bos_token_id)[0]} for r in chunk]
            began = time.perf_counter()
            results = self._llm.generate(prompts, [vllm_sampling(params, r) for r in chunk], use_tqdm=False,
                                         lora_request=self._lora)
            elapsed = time.perf_counter() - began
            outputs = []
            generated_tokens = 0
            for request, result in zip(chunk, results, strict=True):
                completions = sorted(result.outputs, key=lambda c: c.index)
                generated_tokens += sum(len(c.token_ids) for c in completions)
                if len(completions) == 1:  # greedy: one answer for every sample
                    completions = completions * request.samples
                outputs.extend(Output(key=request.key, sample=sample, text=completion.text.strip(),
                                      new_tokens=len(completion.token_ids),
                                      truncated=completion.finish_reason == "length", seconds=elapsed)
                               for sample, completion in enumerate(completions))
            throughput.add(Throughput(prompts=len(chunk), outputs=len(outputs), new_tokens=generated_tokens,
                                      seconds=elapsed))
            on_outputs(outputs)
        return throughput


def vllm_sampling(params: SamplingParams, request: Request):  # noqa: ANN201 - vllm's type, imported lazily
    from vllm import SamplingParams as VllmSamplingParams

    digest = hashlib.sha256(f"{params.seed}\x1f{request.key}".encode()).digest()
    seed = int.from_bytes(digest[:4], "big")
    if params.temperature <= 0:
        # Greedy: one answer, given to every sample as the transformers backend does.
        return VllmSamplingParams(n=1, temperature=0.0, max_tokens=params.max_new_tokens, seed=seed)
    return VllmSamplingParams(n=request.samples, temperature=params.temperature, top_p=params.top_p, top_k=-1,
                              repetition_penalty=1.0, max_tokens=params.max_new_tokens, seed=seed)


def _context_length(llm, configured: int | None) -> int:  # noqa: ANN001 - vllm's LLM
    """The model length vLLM settled on (its engine classes moved between versions: look in both places)."""
    engine = getattr(llm, "llm_engine", None)
    for config in (getattr(engine, "model_config", None),
                   getattr(getattr(engine, "vllm_config", None), "model_config", None)):
        length = getattr(config, "max_model_len", None)
        if isinstance(length, int):
            return length
    return configured or DEFAULT_CONTEXT


def _lora_rank(adapter: str) -> int:
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    return int(config.get("r") or 16)


def merge_adapters(spec: ModelSpec, *, work_dir: str | None = None) -> str:
    """The base model with spec.adapters merged in order (PEFT merge_and_unload, on the CPU), saved with its
    tokenizer into a new temporary folder; the caller removes it."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tempfile.mkdtemp(prefix="crossfeed-merged-", dir=work_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.base_path, dtype="auto", local_files_only=True)
        for adapter in spec.adapters:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(spec.base_path, local_files_only=True).save_pretrained(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
