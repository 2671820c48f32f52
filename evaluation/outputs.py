"""The per-example outputs of a run: one JSON object per line, appended as the model produces them. Django-free.

The file is the run's memory: a crashed worker leaves every finished line behind, a retry skips the examples
already in it, and the results are computed from it. A worker killed mid-write can leave half a line at the end;
opening the log cuts that tail off before anything is appended, so the file never holds a broken line in the
middle.

A line (generation):     {"benchmark", "language", "id", "input", "reference", "output", "expected_language",
                          "off_target", "new_tokens", "truncated"}
A line (classification): {"benchmark", "language", "id", "input", "options", "scores", "prediction", "label",
                          "correct"}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]  # (benchmark, language, example id)


def key_of(record: dict[str, Any]) -> Key:
    return record["benchmark"], record["language"], str(record["id"])


def read_records(path: Path | str, *, benchmark: str | None = None, language: str | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Every complete record (optionally of one benchmark and language), in file order."""
    path = Path(path)
    if not path.is_file():
        return
    # Cheap pre-filter on the raw bytes before parsing: drill-down pages read one language of a large file, and a
    # run scores each language from the file as soon as it is complete.
    needles = [json.dumps(value).encode() for value in (benchmark, language) if value]
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n") or any(needle not in raw for needle in needles):
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if benchmark and record.get("benchmark") != benchmark:
                continue
            if language and record.get("language") != language:
                continue
            yield record


class OutputLog:
    """Append-only writer that knows which examples are already done."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_tail()
        self.path.touch()
        self.done: set[Key] = {key_of(record) for record in read_records(self.path)}

    def _drop_partial_tail(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb+") as handle:
            content = handle.read()
            end = content.rfind(b"\n") + 1
            if end != len(content):
                handle.truncate(end)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        lines = []
        for record in records:
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            self.done.add(key_of(record))
        if not lines:
            return 0
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            # A batch of outputs can cost minutes of GPU time: make it survive a power cut, not just a crash.
            os.fsync(handle.fileno())
        return len(lines)
