"""What every generation backend speaks: requests in, outputs out, throughput back. Django-free.

A backend (transformers on this machine, vLLM on a GPU host, an OpenAI-compatible endpoint) takes requests, each a
chat conversation to answer `samples` times, and hands outputs to `on_outputs` after each batch, so the caller can
save them as they come (a crash or a cancel keeps what was done). `should_stop()` is asked between batches; when it
says yes, generate() raises GenerationStopped after handing over what it finished.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    max_new_tokens: int = 256
    seed: int = 0


@dataclass(frozen=True)
class Request:
    key: str  # the caller's name for it; outputs carry it back
    messages: list[dict[str, str]]
    samples: int = 1


@dataclass(frozen=True)
class Output:
    key: str
    sample: int  # 0 .. samples - 1
    text: str
    new_tokens: int
    truncated: bool  # stopped by max_new_tokens (no EOS; finish_reason "length")
    error: str = ""  # non-empty: this request failed (text is "")
    seconds: float = 0.0  # wall time of the batch or request that produced it


@dataclass
class Throughput:
    prompts: int = 0
    outputs: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def prompts_per_second(self) -> float | None:
        return self.prompts / self.seconds if self.seconds > 0 else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.new_tokens / self.seconds if self.seconds > 0 else None

    def add(self, other: Throughput) -> None:
        self.prompts += other.prompts
        self.outputs += other.outputs
        self.new_tokens += other.new_tokens
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, float | int | None]:
        def rounded(value: float | None) -> float | None:
            return round(value, 3) if value is not None else None

        return {"prompts": self.prompts, "outputs": self.outputs, "new_tokens": self.new_tokens,
                "seconds": round(self.seconds, 3), "prompts_per_second": rounded(self.prompts_per_second),
                "tokens_per_second": rounded(self.tokens_per_second)}


class GenerationStopped(Exception):
    """generate() stopped between batches because should_stop() said so; what it finished was handed over."""


def never_stop() -> bool:
    return False


class Backend(Protocol):
    label: str

    def generate(self, requests: Sequence[Request], params: SamplingParams, *,
                 on_outputs: Callable[[list[Output]], None], should_stop: Callable[[], bool] = never_stop
                 ) -> Throughput:
        """Answer every request `samples` times; on_outputs after each batch; GenerationStopped when stopped."""
        ...

    def close(self) -> None:
        """Free the model or the connection pool; the backend is not used again."""
        ...
