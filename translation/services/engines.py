"""One translator as a backend: translate(requests) with the languages named, whatever the kind.

An llm translator is generation's TransformersBackend (vLLM where configured) and an endpoint translator its
EndpointBackend, both built by generation's build_backend and asked greedily (temperature 0) with the translator's
prompt; a seq2seq translator is translation/backends/seq2seq.py's backend. All hand their outputs over batch by batch
and stop between batches (GenerationStopped), as generation jobs' backends do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from generation.backends.base import Output, Request, SamplingParams, Throughput, never_stop
from generation.services.assembly import JobFailed
from translation.backends.seq2seq import TranslationRequest
from translation.models import Translator

# Sentences per seq2seq batch: MT models are small beside the LLM translators (an LLM translator batches as
# generation does, CROSSFEED_GENERATION_BATCH_SIZE).
SEQ2SEQ_BATCH_SIZE = 16


class Engine:
    def __init__(self, translator: Translator, names: dict[str, str]) -> None:
        """names: {FLORES code: English name}, for the llm prompt."""
        self.translator, self.names = translator, names
        self.label = translator.name
        if translator.kind == Translator.Kind.SEQ2SEQ:
            from translation.backends.seq2seq import Seq2SeqBackend

            self.backend: Any = Seq2SeqBackend(translator.path, label=self.label,
                                               batch_size=SEQ2SEQ_BATCH_SIZE,
                                               max_new_tokens=translator.max_new_tokens)
        else:
            from generation.services.execution import build_backend

            generator: dict[str, Any] = {"label": self.label}
            for kind in ("base_model", "model_version", "endpoint"):
                if getattr(translator, f"{kind}_id"):
                    generator[kind] = getattr(translator, f"{kind}_id")
            if len(generator) != 2:
                raise JobFailed(f"the translator {self.label!r} lost its model or endpoint after the job was created")
            self.backend = build_backend(generator)

    def close(self) -> None:
        self.backend.close()

    def translate(self, requests: Sequence[TranslationRequest], *, on_outputs: Callable[[list[Output]], None],
                  should_stop: Callable[[], bool] = never_stop) -> Throughput:
        if self.translator.kind == Translator.Kind.SEQ2SEQ:
            return self.backend.translate(requests, on_outputs=on_outputs, should_stop=should_stop)
        asked = [Request(key=request.key, messages=[{"role": "user", "content": self.prompt(request)}])
                 for request in requests]
        params = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=self.translator.max_new_tokens, seed=0)
        return self.backend.generate(asked, params, on_outputs=on_outputs, should_stop=should_stop)

    def prompt(self, request: TranslationRequest) -> str:
        return self.translator.prompt_template.format(source=self.names.get(request.source, request.source),
                                                      target=self.names.get(request.target, request.target),
                                                      text=request.text)
