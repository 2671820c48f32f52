"""A generation job's outputs.jsonl: every model answer, appended (and fsynced) as the backend hands it over.

The file is the job's memory, as evaluation's outputs are a run's: a cancelled or crashed job keeps every finished
answer, a retry generates only the requests with no answer in it yet, and the items are assembled from it. A
worker killed mid-write can leave half a line at the end; opening the file cuts that tail off first.

A line: {"key", "generator" (index in job.generators), "prompt" (index in prompts.jsonl), "language" (the response
language), "sample", "text", "new_tokens", "truncated", "error", "seconds"}. A request that failed has lines with an
"error" and no text; it is asked again by a retry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Unit:
    """One request: a generator answers one prompt in one response language (samples_per_generator times)."""

    generator: int
    prompt: int
    language: str

    @property
    def key(self) -> str:
        return f"g{self.generator}|p{self.prompt}|{self.language}"


class OutputsFile:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()
        self.path.touch()
        # Answered requests; one whose every line is an error is asked again.
        self.done: set[str] = {record["key"] for record in self.records() if not record.get("error")}

    def _drop_partial_tail(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb+") as handle:
            content = handle.read()
            end = content.rfind(b"\n") + 1
            if end != len(content):
                handle.truncate(end)

    def records(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    continue
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:
                    continue

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        lines = []
        for record in records:
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            if not record.get("error"):
                self.done.add(record["key"])
        if not lines:
            return 0
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            # A batch can cost minutes of GPU time or paid calls: make it survive a power cut, not just a crash.
            os.fsync(handle.fileno())
        return len(lines)
