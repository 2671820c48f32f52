"""What Crossfeed writes is readable by its own user only: the database holds every annotator's work and the API
tokens' hashes, media/ the exports (every ranking), uploads and trained models.

settings.py sets the process's umask before anything creates a file, so the database, its WAL and shared-memory
files, the exports, the uploads' folders and the training runs (whose processes inherit the umask) are created
0600 / 0700 (0640 / 0750 with CROSSFEED_UMASK=027, for a group such as a backup user's). SQLite gives the WAL and
-shm files the mode of the database file, so a database created before this rule is narrowed at start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_UMASK = 0o077


def umask_from_env(name: str = "CROSSFEED_UMASK") -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULT_UMASK
    try:
        value = int(raw, 8)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an octal umask such as 077 or 027") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"{name}={raw!r}: expected an octal umask between 000 and 777, such as 077 or 027")
    if value & 0o007 != 0o007:
        raise ValueError(f"{name}={raw!r} would let every local user read or change Crossfeed's files; "
                         "use 077 (owner only) or 027 (owner and group)")
    return value


def database_files_narrow(database: dict, *, umask: int) -> list[Path]:
    """Take away what the umask forbids from an existing SQLite database and its companion files (never widens a
    mode). Returns the files changed."""
    if "sqlite3" not in database.get("ENGINE", "") or str(database.get("NAME", "")) in ("", ":memory:"):
        return []
    name = str(database["NAME"])
    changed = []
    for path in (Path(name + suffix) for suffix in ("", "-wal", "-shm", "-journal", "-writelock")):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & umask:
                os.chmod(path, mode & ~umask)
                changed.append(path)
        except FileNotFoundError:
            continue
    return changed
