"""COMET-Kiwi (unbabel-comet) as a reference-free quality scorer that runs in its own Python environment.

unbabel-comet 2.2.7 (the newest) needs numpy < 2, transformers < 5 and huggingface-hub < 1, so it cannot be
installed beside Crossfeed's packages. It runs instead as a subprocess of another interpreter that has it
(CROSSFEED_COMET_PYTHON), on a local checkpoint (CROSSFEED_COMET_MODEL: the folder of a downloaded
Unbabel/wmt22-cometkiwi-da, with hparams.yaml and checkpoints/model.ckpt, or the .ckpt itself). Nothing is ever
downloaded: the worker runs with HF_HUB_OFFLINE=1 and loads with local_files_only=True, so the encoder's tokenizer
(`pretrained_model` in hparams.yaml) must be a local folder or in that environment's Hugging Face cache.

One call scores every pair of a job: the pairs go in as JSON lines on stdin, and the worker (this same file, run by
path with `python -I`, so it imports nothing of Crossfeed and is not shadowed by it) loads the model once, predicts
in chunks of CHUNK pairs and prints a progress line after each ({"done": n}) and the scores at the end
({"scores": [...]}); an error is one line {"error": "..."} and exit status 1. Anything comet or Lightning print goes to
stderr, whose last lines are quoted when the call fails. While the worker runs, the caller's `should_stop` is asked
every POLL_SECONDS (a job's cancel, the worker stopping, the job taken over): on True the worker is killed and
CometStopped raised, so scoring a large job does not hold a stop back for many minutes.

Stdlib only at the top: the worker side runs in the other environment.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 256  # pairs per predict call in the worker: a progress line (and a heartbeat) after each
BATCH_SIZE = 16  # comet's own default for predict
CHECK_SECONDS = 60  # the import check at job creation (the interpreter starts, finds comet)
POLL_SECONDS = 2.0  # how often should_stop is asked while the worker runs, whether or not it says anything
STDERR_KEPT = 2000
SCORER_PREFIX = "comet-kiwi:"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}


class CometUnavailable(RuntimeError):
    """The settings point nowhere: the interpreter or the checkpoint is missing, or the interpreter has no comet."""


class CometFailed(RuntimeError):
    """The scorer ran and failed: the model did not load, predict raised, it timed out or answered nonsense."""


class CometStopped(Exception):
    """`should_stop` said stop while the scorer ran (a cancel, the worker stopping): it was killed, no scores."""


@dataclass(frozen=True)
class CometConfig:
    python: str
    model: str
    seconds_per_thousand: float = 600.0

    @property
    def scorer(self) -> str:
        return SCORER_PREFIX + model_name(self.model)


def checkpoint_file(model: str | os.PathLike[str]) -> Path | None:
    """The .ckpt of a local COMET model: `model` itself when it is a file, <model>/checkpoints/model.ckpt when it is
    a folder (the hub's layout); None when that file is not there."""
    path = Path(model).expanduser()
    checkpoint = path / "checkpoints" / "model.ckpt" if path.is_dir() else path
    return checkpoint if checkpoint.is_file() else None


def model_name(model: str | os.PathLike[str]) -> str:
    """A readable name of the model: the folder's name (the one above checkpoints/ for a .ckpt), or owner/name when
    it sits in a Hugging Face cache (models--Unbabel--wmt22-cometkiwi-da/snapshots/<hash>)."""
    path = Path(model).expanduser()
    if path.suffix == ".ckpt":
        path = path.parent.parent if path.parent.name == "checkpoints" else path.with_suffix("")
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.removeprefix("models--").replace("--", "/")
    return path.name or str(path)


def comet_problem(python: str, model: str) -> str | None:
    """What is wrong with the two settings, said so that an admin can fix it; None when both are empty (COMET is
    off) or both work as far as can be seen without loading the model (the interpreter runs and finds comet, the
    checkpoint is there)."""
    if not python and not model:
        return None
    if not python or not model:
        missing, given = ("CROSSFEED_COMET_PYTHON", "CROSSFEED_COMET_MODEL") if not python else \
            ("CROSSFEED_COMET_MODEL", "CROSSFEED_COMET_PYTHON")
        return (f"{given} is set but {missing} is not: set both (an interpreter that has unbabel-comet, and a local "
                "COMET-Kiwi checkpoint) or neither (the fallback score)")
    interpreter = Path(python).expanduser()
    if not interpreter.is_file() or not os.access(interpreter, os.X_OK):
        return (f"CROSSFEED_COMET_PYTHON {python!r} is not an executable file: point it at the python of a "
                "virtualenv where `pip install unbabel-comet` was run (docs/translation-quality.md)")
    if checkpoint_file(model) is None:
        return (f"CROSSFEED_COMET_MODEL {model!r} has no checkpoint: give the folder of a downloaded "
                "Unbabel/wmt22-cometkiwi-da (with hparams.yaml and checkpoints/model.ckpt) or the .ckpt file; "
                "Crossfeed never downloads it")
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('comet') else 3)"
    try:
        done = subprocess.run([str(interpreter), "-I", "-c", probe], capture_output=True, text=True,
                              timeout=CHECK_SECONDS, env={**os.environ, **OFFLINE}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"CROSSFEED_COMET_PYTHON {python!r} does not run: {exc}"
    if done.returncode == 3:
        return (f"CROSSFEED_COMET_PYTHON {python!r} has no `comet` module: run `{python} -m pip install "
                "unbabel-comet` (docs/translation-quality.md)")
    if done.returncode != 0:
        return f"CROSSFEED_COMET_PYTHON {python!r} does not run (exit {done.returncode}): {done.stderr[-500:]}"
    return None


def comet_score(config: CometConfig, pairs: Sequence[tuple[str, str]], *,
                on_progress: Callable[[int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[float]:
    """COMET scores of (source, translation) pairs, in order, from one subprocess. Raises CometUnavailable when the
    settings point nowhere, CometFailed when the worker fails, times out (seconds_per_thousand per 1,000 pairs, and
    once more for loading the model) or answers the wrong number of scores. `on_progress(done)` is called after
    each chunk (a job beats its heartbeat there). `should_stop()` is asked every POLL_SECONDS in the calling thread
    (it may read the database); when it says True the worker is killed and CometStopped raised."""
    problem = comet_problem(config.python, config.model)
    if problem is not None:
        raise CometUnavailable(problem)
    if not pairs:
        return []
    timeout = config.seconds_per_thousand * (1 + len(pairs) / 1000)
    command = [str(Path(config.python).expanduser()), "-I", str(Path(__file__).resolve()),
               str(checkpoint_file(config.model))]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, encoding="utf-8", env={**os.environ, **OFFLINE})
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None  # PIPE, all three
    errors, output = process.stderr, process.stdout
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(errors.read()), daemon=True)
    reader.start()
    # stdout is read in a thread too: the calling thread waits on the queue with a timeout, so it asks should_stop
    # on time even while the worker says nothing (loading the model, a long chunk). None marks the end of stdout.
    lines: queue.Queue[str | None] = queue.Queue()
    listener = threading.Thread(target=_listen, args=(output, lines), daemon=True)
    listener.start()
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    answer: dict = {}
    stopped = False
    try:
        feeder = threading.Thread(target=_feed, args=(process, pairs), daemon=True)
        feeder.start()
        next_poll = time.monotonic() + POLL_SECONDS
        while True:
            if should_stop is not None and time.monotonic() >= next_poll:
                if should_stop():
                    stopped = True
                    break
                next_poll = time.monotonic() + POLL_SECONDS
            try:
                line = lines.get(timeout=None if should_stop is None else max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                continue
            if line is None:
                break
            message = _message(line)
            if "done" in message and on_progress is not None:
                on_progress(int(message["done"]))
            if "scores" in message or "error" in message:
                answer = message
        if not stopped:
            process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        listener.join(timeout=5)
    if stopped:
        raise CometStopped(f"the COMET scorer was stopped after {len(pairs)} pairs were sent to it: the job was "
                           "cancelled or taken over, or its worker is stopping")
    tail = "".join(stderr)[-STDERR_KEPT:].strip()
    where = f"the COMET scorer ({config.python} on {config.model})"
    if timed_out.is_set():
        raise CometFailed(f"{where} took more than {timeout:.0f} s for {len(pairs)} pairs and was stopped; raise "
                          "CROSSFEED_COMET_TIMEOUT (seconds per 1,000 pairs) or give it a GPU")
    if "error" in answer or process.returncode != 0:
        said = answer.get("error") or f"exit status {process.returncode}"
        raise CometFailed(f"{where} failed: {said}" + (f"\n{tail}" if tail else ""))
    scores = answer.get("scores")
    if not isinstance(scores, list) or len(scores) != len(pairs) or \
            not all(isinstance(value, int | float) for value in scores):
        raise CometFailed(f"{where} answered {len(scores) if isinstance(scores, list) else 'no'} scores for "
                          f"{len(pairs)} pairs" + (f"\n{tail}" if tail else ""))
    return [float(value) for value in scores]


def _message(line: str) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _listen(output: IO[str], lines: queue.Queue) -> None:
    try:
        for line in output:
            lines.put(line)
    except (OSError, ValueError):
        pass  # the pipe was closed under us (the worker killed): the end of stdout all the same
    finally:
        lines.put(None)


def _feed(process: subprocess.Popen, pairs: Sequence[tuple[str, str]]) -> None:
    # From a thread: a large job fills the stdin pipe long before the worker answers, while the caller reads.
    stdin = process.stdin
    assert stdin is not None
    try:
        for source, translation in pairs:
            stdin.write(json.dumps({"src": source, "mt": translation}, ensure_ascii=False) + "\n")
        stdin.close()
    except (BrokenPipeError, OSError):
        pass  # the worker died; its exit status and stderr say why


# --- the worker: runs inside the COMET environment -------------------------------------------------------------


def _worker(checkpoint: str) -> int:
    # comet and Lightning print banners on stdout; the answer keeps the real stdout, everything else goes to stderr.
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(message: dict) -> None:
        answer.write(json.dumps(message) + "\n")
        answer.flush()

    try:
        samples = [json.loads(line) for line in sys.stdin if line.strip()]
        import torch
        from comet import load_from_checkpoint

        model = load_from_checkpoint(checkpoint, local_files_only=True)
        gpus = 1 if torch.cuda.is_available() else 0
        scores: list[float] = []
        for start in range(0, len(samples), CHUNK):
            chunk = samples[start : start + CHUNK]
            prediction = model.predict(chunk, batch_size=BATCH_SIZE, gpus=gpus, progress_bar=False)
            scores += [float(value) for value in prediction.scores]
            say({"done": len(scores)})
        say({"scores": scores})
        return 0
    except Exception as exc:  # the parent quotes it, with the traceback from stderr
        import traceback

        traceback.print_exc()
        say({"error": f"{type(exc).__name__}: {exc}"[:2000]})
        return 1


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
