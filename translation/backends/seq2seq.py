"""Translation with a seq2seq MT model of the NLLB-200 kind, batched, on this machine's GPU or CPU. Django-free.

NLLB-200 (and any model built like it, such as the tiny one of translation/backends/tiny_seq2seq.py) names
languages by FLORES-200 codes (``swh_Latn``) that are special tokens of its tokenizer: the source is encoded as
``[source code] text </s>`` and the decoder is forced to start with the target's code (`forced_bos_token_id`). The
languages a model knows are exactly those tokens (`language_tokens`), which is how a job refuses a language before
it is queued. The input is built here rather than with `tokenizer.src_lang`, so that a tokenizer without that
attribute (ours) and NLLB's (whose non-legacy format is the same) encode alike.

Padding: an encoder-decoder model reads the whole source at once and the decoder starts fresh, so the encoder
input is padded on the right with its attention mask (the left padding of causal generation is not needed).
Requests are grouped by target language (one forced first token per generate call) and sorted longest first.

CTranslate2: when the model folder is a CTranslate2 conversion (model.bin) and `ctranslate2` is installed, it is
used instead, for speed on CPU and GPU. The folder must hold the model's tokenizer files beside model.bin (the
converter copies them with `copy_files`, see docs/translation.md); tokens go in and out as strings. The decoding is
the transformers path's, token for token (tests/translation/test_ctranslate2.py): greedy (`beam_size=1`), the target's
code as `target_prefix` (what forced_bos_token_id does; the decoder start </s> is in the converted config), and
`max_decoding_length` counts that code as `max_new_tokens` counts the forced token. CTranslate2 runs on as many
CPU threads as torch is set to (`intra_threads`), so one setting governs both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generation.backends.base import GenerationStopped, Output, Throughput, never_stop

FLORES_TOKEN_RE = re.compile(r"^(?:__)?([a-z]{3}_[A-Z][a-z]{3})(?:__)?$")


@dataclass(frozen=True)
class TranslationRequest:
    key: str
    text: str
    source: str  # FLORES-200 code of the text's language
    target: str  # FLORES-200 code to translate into


def language_tokens(tokenizer) -> dict[str, int]:  # noqa: ANN001 - any transformers tokenizer
    """{FLORES code: token id} of the language tokens among the tokenizer's special and added tokens."""
    found: dict[str, int] = {}
    names = list(getattr(tokenizer, "additional_special_tokens", None) or [])
    names += list(tokenizer.get_added_vocab())
    for name in names:
        match = FLORES_TOKEN_RE.match(name)
        if match:
            found[match.group(1)] = tokenizer.convert_tokens_to_ids(name)
    return found


def load_tokenizer(path: str):  # noqa: ANN201
    """The tokenizer of a local folder, or of a hub id already in the local cache: never downloaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def ctranslate2_vocabulary(path: str) -> set[str] | None:
    """The target tokens of a CTranslate2 folder (None for another folder): its shared or target vocabulary."""
    import json

    for name in ("shared_vocabulary.json", "target_vocabulary.json"):
        file = Path(path) / name
        if (Path(path) / "model.bin").is_file() and file.is_file():
            return set(json.loads(file.read_text(encoding="utf-8")))
    return None


def known_languages(path: str) -> list[str]:
    """The FLORES-200 codes the model at `path` has language tokens for, sorted. For a CTranslate2 folder, only
    those its vocabulary has too: a tokenizer copied from another model must not promise languages."""
    codes = language_tokens(load_tokenizer(path))
    vocabulary = ctranslate2_vocabulary(path)
    return sorted(code for code in codes if vocabulary is None or code in vocabulary)


def ctranslate2_available(path: str) -> bool:
    if not (Path(path) / "model.bin").is_file():
        return False
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


# The tokenizer files a converted folder needs beside model.bin (NLLB ships tokenizer.json, the tokenizer's config,
# its special tokens and its SentencePiece model); those the source folder has are copied.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model")


def convert_to_ctranslate2(source: str | Path, output: str | Path, *, quantization: str | None = None) -> Path:
    """Convert a local transformers seq2seq folder to a CTranslate2 one, its tokenizer copied beside model.bin (the
    converter copies nothing it is not told to). quantization: None keeps the weights' type; "int8" for CPU speed.
    The same as `ct2-transformers-converter --model SOURCE --output_dir OUTPUT --copy_files tokenizer.json ...`."""
    from ctranslate2.converters import TransformersConverter

    copy = [name for name in TOKENIZER_FILES if (Path(source) / name).is_file()]
    converter = TransformersConverter(str(source), copy_files=copy)
    return Path(converter.convert(str(output), quantization=quantization, force=True))


class Seq2SeqBackend:
    """translate(requests) -> outputs handed to on_outputs batch by batch, as generation's backends do."""

    def __init__(self, path: str, *, label: str, batch_size: int = 16, max_new_tokens: int = 256,
                 device: str | None = None) -> None:
        import torch

        self.path, self.label = path, label
        self.batch_size, self.max_new_tokens = max(1, batch_size), max_new_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(path)
        self.codes = language_tokens(self.tokenizer)
        self._ct2 = None
        self._model = None
        if ctranslate2_available(path):
            import ctranslate2

            ct2_device = "cuda" if self.device.startswith("cuda") and ctranslate2.get_cuda_device_count() else "cpu"
            self._ct2 = ctranslate2.Translator(path, device=ct2_device, inter_threads=1,
                                               intra_threads=torch.get_num_threads())
        elif (Path(path) / "model.bin").is_file():
            raise RuntimeError(f"{path} is a CTranslate2 model (model.bin) but ctranslate2 is not installed: "
                               "install it (pip install -c constraints.txt ctranslate2) or give the transformers "
                               "model's folder")
        else:
            from transformers import AutoModelForSeq2SeqLM

            self._model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True).to(self.device).eval()

    def close(self) -> None:
        self._model = self._ct2 = None

    def translate(self, requests: Sequence[TranslationRequest], *, on_outputs: Callable[[list[Output]], None],
                  should_stop: Callable[[], bool] = never_stop) -> Throughput:
        throughput = Throughput()
        for batch in self._batches(requests):
            if should_stop():
                raise GenerationStopped()
            unknown = [request for request in batch if {request.source, request.target} - set(self.codes)]
            outputs = [Output(key=request.key, sample=0, text="", new_tokens=0, truncated=False,
                              error=f"{self.label} has no language token for {request.source} or {request.target}")
                       for request in unknown]
            todo = [request for request in batch if request not in unknown]
            began = time.monotonic()
            if todo:
                outputs += self._ct2_batch(todo) if self._ct2 is not None else self._batch(todo)
            seconds = time.monotonic() - began
            outputs = [Output(**{**output.__dict__, "seconds": seconds}) for output in outputs]
            throughput.add(Throughput(prompts=len(todo), outputs=len(todo),
                                      new_tokens=sum(output.new_tokens for output in outputs), seconds=seconds))
            on_outputs(outputs)
        return throughput

    def _batches(self, requests: Sequence[TranslationRequest]) -> list[list[TranslationRequest]]:
        by_target: dict[str, list[TranslationRequest]] = {}
        for request in requests:
            by_target.setdefault(request.target, []).append(request)
        batches = []
        for group in by_target.values():
            group.sort(key=lambda request: -len(request.text))
            batches += [group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        return batches

    def _source_ids(self, request: TranslationRequest) -> list[int]:
        ids = self.tokenizer(request.text, add_special_tokens=False)["input_ids"]
        limit = max(1, getattr(self.tokenizer, "model_max_length", 1024) or 1024)
        limit = min(limit, 1024) - 2
        return [self.codes[request.source], *ids[:limit], self.tokenizer.eos_token_id]

    def _batch(self, batch: list[TranslationRequest]) -> list[Output]:
        import torch

        rows = [self._source_ids(request) for request in batch]
        width = max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=self.device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows], device=self.device)
        with torch.inference_mode():
            generated = self._model.generate(
                input_ids=input_ids, attention_mask=mask, forced_bos_token_id=self.codes[batch[0].target],
                max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
            )
        eos = self.tokenizer.eos_token_id
        outputs = []
        for request, sequence in zip(batch, generated.tolist(), strict=True):
            # sequence: decoder start, the target's code, then the translation up to </s> and padding.
            body = sequence[2:]
            ended = eos in body
            body = body[:body.index(eos)] if ended else body
            text = self.tokenizer.decode(body, skip_special_tokens=True)
            outputs.append(Output(key=request.key, sample=0, text=text.strip(), new_tokens=len(body) + 1,
                                  truncated=not ended))
        return outputs

    def _ct2_batch(self, batch: list[TranslationRequest]) -> list[Output]:
        tokens = [self.tokenizer.convert_ids_to_tokens(self._source_ids(request)) for request in batch]
        # Greedy and no sampling as generate(do_sample=False, num_beams=1); return_end_token tells an ended
        # translation from one cut at the length limit.
        results = self._ct2.translate_batch(tokens, target_prefix=[[request.target] for request in batch],
                                            max_decoding_length=self.max_new_tokens, beam_size=1, sampling_topk=1,
                                            return_end_token=True)
        eos = self.tokenizer.eos_token
        outputs = []
        for request, result in zip(batch, results, strict=True):
            # hypothesis: the target's code (the prefix), then the translation up to </s> when it ended.
            body = result.hypotheses[0][1:]
            ended = eos in body
            body = body[:body.index(eos)] if ended else body
            text = self.tokenizer.decode(self.tokenizer.convert_tokens_to_ids(body), skip_special_tokens=True)
            outputs.append(Output(key=request.key, sample=0, text=text.strip(), new_tokens=len(body) + 1,
                                  truncated=not ended))
        return outputs
