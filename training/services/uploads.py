"""Uploaded SFT files: stored under a name we choose, checked line by line, kept only when every line is valid."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import PurePath

from django.core.files.uploadedfile import UploadedFile

from training.services.runs import count_sft_rows, uploads_root


@dataclass(frozen=True)
class SFTUpload:
    path: str
    rows: int


def sft_upload_store(*, upload: UploadedFile) -> SFTUpload:
    """Store an uploaded JSONL of {"messages": [...]} rows as <uuid>.jsonl; a bad file leaves nothing behind.

    The client's file name never reaches the file system: it only names the file in error messages.
    """
    folder = uploads_root()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}.jsonl"
    # Written under a dot-name first, so a half-copied upload is never mistaken for a usable file.
    partial = folder / f".{target.name}.part"
    label = PurePath(upload.name or "upload").name[:120] or "upload"
    # Only a name for messages, but a message with a lone surrogate in it could not be sent.
    label = label.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        with partial.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        rows = count_sft_rows(partial, label=label)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return SFTUpload(path=str(target.resolve()), rows=rows)
