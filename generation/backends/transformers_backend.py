"""Batched sampling with transformers, on this machine's GPU or CPU. Django-free.

The model is loaded as evaluation loads it (evaluation.inference.load_model: local folders only, adapters merged in
order, the chat template training used, left padding), and prompts are rendered and cut to fit the same way, so a
version answers here exactly as it was measured there.

Batches. Requests are grouped by their number of samples (every prompt of a batch is repeated as many times) and
sorted longest first within a group, as evaluation does: similar lengths waste little padding, and running out of
memory happens at the first batch, not after an hour. `batch_size` counts sequences, prompts x samples: 32 with 4
samples each is 8 prompts per batch, so memory stays bounded whatever the samples. The default, 32, gives about 8x
the tokens/s of a one-prompt-at-a-time loop on a CPU in bench/generation_bench.py (8 gives about 5x); a GPU that
cannot hold 32 sequences halves the batch at the first, longest batch and goes on (below). Greedy decoding
(temperature 0) has one answer per prompt: it is generated once and given to every sample.

Sampling. temperature > 0 samples with that temperature and top_p, top-k off and no repetition penalty, as the OpenAI
API and our vLLM backend sample, so the generators of a job differ in their models and not in hidden knobs (a
model's generation_config may ask for top_k=20 and a penalty). The token is drawn by the exponential race
(ExponentialRace, below) rather than torch.multinomial, and on a CPU the top-p tokens are found with numpy's sort
(NucleusFilter) rather than torch's: the same distribution and the same tokens, for much less on a CPU.
torch's generator is seeded before each batch from params.seed and the keys in the batch: a rerun with the same
batches gives the same text, and a retry that resumes gives the same text for a batch that holds the same requests.

Out of memory: the cache is freed and the batch halved, and the smaller batch size is kept for the rest of the call;
a single prompt that still does not fit gets an error Output (per sample) and the others go on.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evaluation.inference import (
    LoadedModel,
    ModelSpec,
    _eos_ids,
    _fit,
    _left_pad,
    encode_prompt,
    load_model,
    render_prompt,
    torch,
)
from generation.backends.base import GenerationStopped, Output, Request, SamplingParams, Throughput, never_stop

OUT_OF_MEMORY = ("out of memory generating this prompt alone ({samples} samples, up to {tokens} new tokens, "
                 "{prompt} prompt tokens): ask for fewer samples or fewer new tokens, or use a device with more "
                 "memory")


@dataclass(frozen=True)
class _Encoded:
    request: Request
    ids: list[int]


class TransformersBackend:
    """A model loaded once; generate() may be called several times (one call per prompt set or per resume)."""

    def __init__(self, spec: ModelSpec, *, label: str, batch_size: int = 32, device: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.label = label
        self.batch_size = batch_size
        self.loaded: LoadedModel | None = load_model(spec, device=device)

    def close(self) -> None:
        self.loaded = None
        _free_memory()

    def generate(self, requests: Sequence[Request], params: SamplingParams, *,
                 on_outputs: Callable[[list[Output]], None], should_stop: Callable[[], bool] = never_stop
                 ) -> Throughput:
        loaded = self._model()
        throughput = Throughput()
        room = max(1, loaded.context_length - params.max_new_tokens)
        encoded = [_Encoded(request, _fit(encode_prompt(loaded, render_prompt(loaded, request.messages)), room,
                                          loaded.tokenizer.bos_token_id)[0])
                   for request in requests]
        rows_cap = self.batch_size
        for samples in sorted({request.samples for request in requests}):
            group = sorted((item for item in encoded if item.request.samples == samples), key=lambda e: -len(e.ids))
            position = 0
            while position < len(group):
                if should_stop():
                    raise GenerationStopped(f"stopped after {throughput.prompts} of {len(requests)} prompts")
                chunk = group[position:position + max(1, rows_cap // _rows_per_prompt(samples, params))]
                outputs = self._batch_or_none(chunk, params, throughput)
                if outputs is None and len(chunk) > 1:
                    # Retry the same prompts, fewer at once.
                    rows_cap = max(1, len(chunk) // 2) * _rows_per_prompt(samples, params)
                    continue
                if outputs is None:
                    outputs = _failed(chunk[0], OUT_OF_MEMORY.format(
                        samples=samples, tokens=params.max_new_tokens, prompt=len(chunk[0].ids)))
                position += len(chunk)
                on_outputs(outputs)
        return throughput

    def _model(self) -> LoadedModel:
        if self.loaded is None:
            raise RuntimeError(f"the generator {self.label} was closed; create a new backend to generate again")
        return self.loaded

    def _batch_or_none(self, chunk: list[_Encoded], params: SamplingParams, throughput: Throughput
                       ) -> list[Output] | None:
        """The batch's outputs, or None when it ran out of memory (the memory is freed before returning: inside the
        except block the traceback would still hold the batch's tensors)."""
        try:
            return self._batch(chunk, params, throughput)
        except RuntimeError as error:  # torch.OutOfMemoryError is one
            if not _out_of_memory(error):
                raise
        _free_memory()
        return None

    def _batch(self, chunk: list[_Encoded], params: SamplingParams, throughput: Throughput) -> list[Output]:
        loaded = self._model()
        tokenizer = loaded.tokenizer
        samples = chunk[0].request.samples
        rows_per_prompt = _rows_per_prompt(samples, params)
        input_ids, attention = _left_pad([item.ids for item in chunk], tokenizer.pad_token_id, loaded.device)
        if rows_per_prompt > 1:
            # Each prompt's samples side by side, as num_return_sequences lays them out.
            input_ids = input_ids.repeat_interleave(rows_per_prompt, dim=0)
            attention = attention.repeat_interleave(rows_per_prompt, dim=0)
        torch.manual_seed(batch_seed(params.seed, [item.request.key for item in chunk]))
        began = time.perf_counter()
        with torch.inference_mode():
            sequences = loaded.model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=params.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id, num_beams=1, **sampling_arguments(params, loaded.device))
        elapsed = time.perf_counter() - began
        eos_ids = _eos_ids(loaded)
        outputs = []
        generated_tokens = 0
        # num_return_sequences repeats each prompt in place: rows are prompt 0 sample 0..n-1, prompt 1 ...
        for row_index, row in enumerate(sequences[:, input_ids.shape[1]:].tolist()):
            item = chunk[row_index // rows_per_prompt]
            ended = next((index for index, token in enumerate(row) if token in eos_ids), None)
            count = ended + 1 if ended is not None else len(row)
            generated_tokens += count
            text = tokenizer.decode(row[:count], skip_special_tokens=True).strip()
            # Greedy decoding has one answer per prompt: each sample gets it (the checks then merge the copies).
            outputs.extend(Output(key=item.request.key, sample=sample, text=text, new_tokens=count,
                                  truncated=ended is None, seconds=elapsed)
                           for sample in _samples_of_row(row_index, rows_per_prompt, samples))
        throughput.add(Throughput(prompts=len(chunk), outputs=len(outputs), new_tokens=generated_tokens,
                                  seconds=elapsed))
        return outputs


def sampling_arguments(params: SamplingParams, device: torch.device) -> dict:
    """generate() keywords for the params: greedy at temperature 0; otherwise temperature and top_p alone decide,
    and the draw is the exponential race (below) after them."""
    # Greedy means greedy: a model's generation_config may ask for sampling knobs we must not inherit.
    greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None, "repetition_penalty": None}
    if params.temperature <= 0:
        return greedy
    # Imported here: the web processes import this module's neighbours but never generate.
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    processors = [TemperatureLogitsWarper(params.temperature)]
    if params.top_p < 1.0:
        processors.append(NucleusFilter(params.top_p) if device.type == "cpu" else TopPLogitsWarper(params.top_p))
    return greedy | {"logits_processor": LogitsProcessorList([*processors, ExponentialRace()])}


class NucleusFilter:
    """Top-p on a CPU: the same tokens as transformers' TopPLogitsWarper keeps (the most likely ones, until their
    probability adds up to top_p), found with numpy's sort, which is vectorised: about 0.7 ms against 4 ms for 32 rows
    of 2,048 tokens, where torch's CPU sort was the largest cost of a small model's step. Only the sorted values are
    needed: every token at least as likely as the last one kept is kept."""

    def __init__(self, top_p: float) -> None:
        self.top_p = top_p

    def __call__(self, input_ids, scores):  # noqa: ANN001, ANN204 - transformers' LogitsProcessor protocol
        import numpy as np

        probabilities = torch.softmax(scores.float(), dim=-1)
        descending = torch.from_numpy(-np.sort(-probabilities.numpy(), axis=-1))
        # The first position where the running total reaches top_p is the last token kept.
        last = (descending.cumsum(-1) < self.top_p).sum(-1, keepdim=True).clamp(max=scores.shape[-1] - 1)
        return scores.masked_fill(probabilities < descending.gather(-1, last), float("-inf"))


class ExponentialRace:
    """Sampling as the last logits processor before greedy's argmax: argmax_i(log p_i - log E_i), E_i ~ Exp(1)
    independent, picks token i with probability p_i (the exponential race, or Gumbel-max trick; vLLM samples so).
    It is the same draw torch.multinomial makes, for less on a CPU (2.3 against 3.3-5.6 ms for 32 rows of 2,048
    tokens), where that per-row work is a large share of a small model's step. Filtered tokens (-inf) never win.
    The noise comes from torch's global generator, seeded per batch."""

    def __call__(self, input_ids, scores):  # noqa: ANN001, ANN204 - transformers' LogitsProcessor protocol
        noise = torch.empty_like(scores, dtype=torch.float32).exponential_()
        return scores.float() - noise.log()


def _rows_per_prompt(samples: int, params: SamplingParams) -> int:
    return samples if params.temperature > 0 else 1


def _samples_of_row(row_index: int, rows_per_prompt: int, samples: int) -> range:
    if rows_per_prompt == samples:
        return range(row_index % samples, row_index % samples + 1)
    return range(samples)


def batch_seed(seed: int, keys: Sequence[str]) -> int:
    """The seed of one batch: the job's seed and the requests in the batch (the same batch, the same seed)."""
    digest = hashlib.sha256("\x1f".join([str(seed), *keys]).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def _failed(item: _Encoded, message: str) -> list[Output]:
    return [Output(key=item.request.key, sample=sample, text="", new_tokens=0, truncated=False, error=message)
            for sample in range(item.request.samples)]


def _out_of_memory(error: RuntimeError) -> bool:
    # A GPU raises torch.OutOfMemoryError; the CPU allocator a plain RuntimeError naming itself.
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
