"""Streaming JSONL and Parquet writers, one file per split, with byte-for-byte reproducible output.

Memory stays bounded: JSONL rows go straight to the file; Parquet rows are buffered up to BATCH_ROWS and written
as one row group each. Nothing in the files depends on when or by whom the export ran, so the same rows give the
same bytes (and the same sha256).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from annotation.export.rows import PREFERENCE_COLUMNS, SFT_COLUMNS

BATCH_ROWS = 20_000

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
PREFERENCE_SCHEMA = pa.schema([
    ("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES),
    ("prompt_language", pa.string()), ("response_language", pa.string()), ("item", pa.string()),
    ("chosen_model", pa.string()), ("rejected_model", pa.string()),
    ("votes_for", pa.int32()), ("votes_against", pa.int32()), ("n_judgments", pa.int32()), ("split", pa.string()),
])
SFT_SCHEMA = pa.schema([
    ("messages", _MESSAGES), ("prompt_language", pa.string()), ("response_language", pa.string()),
    ("item", pa.string()), ("model", pa.string()), ("n_judgments", pa.int32()), ("split", pa.string()),
])


class _JsonlFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] = path.open("wb")

    def write(self, rows: list[dict]) -> None:
        self.handle.write("".join(encode_rows(rows)).encode())

    def close(self) -> None:
        self.handle.close()


_encode_string = json.encoder.encode_basestring  # the C encoder json.dumps(..., ensure_ascii=False) uses


def encode_rows(rows: list[dict]) -> list[str]:
    """JSON lines, byte-identical to json.dumps(row, ensure_ascii=False) + newline, but faster.

    Rows of one item share their message lists (the prompt, each response), so each list is encoded once per
    batch, not once per row: with 4 responses and 6 pairs that is 5 encodings instead of 18. Keys are plain ASCII
    names, so quoting them by hand is exact.
    """
    encoded: dict[int, str] = {}
    lines = []
    for row in rows:
        parts = []
        for key, value in row.items():
            if isinstance(value, str):
                text = _encode_string(value)
            elif isinstance(value, list):
                cached = encoded.get(id(value))
                if cached is None:
                    cached = encoded[id(value)] = json.dumps(value, ensure_ascii=False)
                text = cached
            else:
                text = json.dumps(value)
            parts.append(f'"{key}": {text}')
        lines.append("{" + ", ".join(parts) + "}\n")
    return lines


class _ParquetFile:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.buffer: list[dict] = []
        # No statistics timestamps exist in Parquet; the writer's version string is fixed by the pinned pyarrow.
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, rows: list[dict]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class DatasetWriter:
    """Writes rows to `<folder>/<split>.<format>`; a split that gets no rows gets no file."""

    def __init__(self, folder: Path, *, file_format: str, kind: str, weights: bool = False) -> None:
        if file_format not in {"jsonl", "parquet"}:
            raise ValueError(f"unknown format {file_format!r}: jsonl or parquet")
        self.folder = folder
        self.file_format = file_format
        self.schema = SFT_SCHEMA if kind == "sft" else PREFERENCE_SCHEMA
        self.columns = SFT_COLUMNS if kind == "sft" else PREFERENCE_COLUMNS
        if weights:
            # The optional last column of preference rows (docs/export.md).
            self.schema = self.schema.append(pa.field("weight", pa.float64()))
            self.columns = (*self.columns, "weight")
        self.files: dict[str, _JsonlFile | _ParquetFile] = {}
        self.counts: dict[str, int] = {}

    def write(self, split: str, rows: list[dict]) -> None:
        if not rows:
            return
        target = self.files.get(split)
        if target is None:
            path = self.folder / f"{split}.{self.file_format}"
            target = _JsonlFile(path) if self.file_format == "jsonl" else _ParquetFile(path, self.schema)
            self.files[split] = target
        target.write(rows)
        self.counts[split] = self.counts.get(split, 0) + len(rows)

    def close(self) -> list[dict]:
        """Close every file; returns [{name, rows, bytes, sha256}] in split order."""
        described = []
        for split in sorted(self.files, key=lambda name: (name != "train", name)):
            target = self.files[split]
            target.close()
            path = target.path
            described.append({"name": path.name, "rows": self.counts[split], "bytes": path.stat().st_size,
                              "sha256": sha256_of(path)})
        return described


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
