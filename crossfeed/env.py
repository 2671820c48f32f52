"""Small typed readers for settings that come from the environment (healthchecks' settings style)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def secret_from_env(name: str, *, fallback_file: Path | None) -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE, or from (and into) fallback_file.

    The fallback keeps a development install working without anyone choosing a key, and without a key in git:
    the first start writes a random one into var/ (mode 0600) and every later start reads it back.
    """
    value = os.environ.get(name)
    if value:
        return value
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        path = Path(file_name)
        if not path.is_file():
            raise ValueError(f"{name}_FILE={file_name!r}: no such file")
        return path.read_text(encoding="utf-8").strip()
    if fallback_file is None:
        raise ValueError(f"{name} is required: set {name} or {name}_FILE")
    if fallback_file.is_file():
        return fallback_file.read_text(encoding="utf-8").strip()
    fallback_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    try:
        fd = os.open(fallback_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (a second gunicorn worker, the task worker) won the race: use its key.
        return fallback_file.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value
