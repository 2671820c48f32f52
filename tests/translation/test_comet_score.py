"""COMET-Kiwi as the translation jobs' quality score, for real: unbabel-comet 2.2.7 in its own virtualenv (it cannot
share .venv: numpy < 2, transformers < 5) and a tiny random COMET-Kiwi-style checkpoint built locally
(translation/backends/tiny_comet.py), both made once into var/test-cache/comet and reused. A job with the two
settings pointing there is scored by COMET (the scorer recorded, the scores what comet's own predict gives for the
same pairs), hard failures are still never chosen, and broken settings are refused at creation or, at run time,
recorded while the fallback scores. The first build takes about 3 minutes and 1.4 GiB (the venv; the checkpoint
15 s), hence `slow`; the tests that need neither run always."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from annotation.models import JobStatus
from crossfeed.errors import Conflict
from tests.translation.fake_translator import HAND_MADE, ROWS
from translation.backends.comet_score import CometConfig, CometFailed, comet_score, model_name
from translation.models import Translation, TranslationJob
from translation.services.choice import COMET_FELL_BACK
from translation.services.execution import translation_job_execute
from translation.services.jobs import translation_job_create

ROOT = Path(django_settings.BASE_DIR)
CACHE = ROOT / "var" / "test-cache" / "comet"
CONSTRAINTS = Path(__file__).with_name("comet-constraints.txt")
BUILDER = ROOT / "translation" / "backends" / "tiny_comet.py"
LANGUAGES = ["sw", "ar", "zh-Hans"]
NO_VENV = "unbabel-comet 2.2.7 could not be installed into var/test-cache/comet/venv (no access to PyPI?)"
TEXTS = [text for row in ROWS for text in (row["instruction"], row["output"])] + list(HAND_MADE.values())
PREDICT = """
import json, sys
from comet import load_from_checkpoint
samples = json.load(sys.stdin)
model = load_from_checkpoint(sys.argv[1], local_files_only=True)
print(json.dumps(model.predict(samples, batch_size=8, gpus=0, progress_bar=False).scores))
"""


def _offline() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _venv() -> Path:
    """var/test-cache/comet/venv/bin/python with unbabel-comet, made once (a stamp names the constraints it was made
    from: a changed constraints file makes it again)."""
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".crossfeed-ready"
    wanted = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"{NO_VENV}: python -m venv: {made.stderr.strip()[-300:]}")
    # torch==2.13.0 as in .venv: pip takes the CPU wheel from its find-links where one lies there; no CUDA build.
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c",
                                str(CONSTRAINTS), "unbabel-comet==2.2.7", "torch==2.13.0", "setuptools==80.10.2"],
                               capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        pytest.skip(f"{NO_VENV}: {installed.stderr.strip()[-300:]}")
    cuda = subprocess.run([str(python), "-I", "-c", "import torch; print(torch.version.cuda)"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert cuda == "None", f"the COMET venv got a CUDA build of torch ({cuda}); it must be the CPU wheel"
    stamp.write_text(wanted)
    return python


def _checkpoint(python: Path) -> Path:
    """The tiny checkpoint's folder, made once per version of the builder and of the texts."""
    key = hashlib.sha256(BUILDER.read_bytes() + json.dumps(TEXTS).encode()).hexdigest()[:12]
    folder = CACHE / f"tiny-kiwi-{key}"
    if (folder / "checkpoints" / "model.ckpt").is_file():
        return folder
    texts = CACHE / f"texts-{key}.json"
    texts.write_text(json.dumps(TEXTS, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    built = subprocess.run([str(python), "-I", str(BUILDER), str(folder), str(texts)], capture_output=True,
                           text=True, env=_offline(), check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


@pytest.fixture(scope="session")
def comet_env() -> tuple[Path, Path]:
    """(the venv's python, the tiny checkpoint's folder); one pytest-xdist worker builds, the other waits."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = _venv()
        return python, _checkpoint(python)


def _predict(python: Path, model: Path, pairs: list[tuple[str, str]]) -> list[float]:
    """comet's own API, independently of Crossfeed's worker: what the scores must be."""
    done = subprocess.run([str(python), "-I", "-c", PREDICT, str(model / "checkpoints" / "model.ckpt")],
                          input=json.dumps([{"src": s, "mt": t} for s, t in pairs]), capture_output=True, text=True,
                          env=_offline(), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fields(translation: Translation) -> dict[str, str]:
    return {name: text for name, text in translation.fields.items() if text}


@pytest.mark.slow
def test_a_job_is_scored_by_comet_kiwi_and_hard_failures_are_still_not_chosen(
        comet_env, settings, instruction_set, llm_translator, endpoint_translator, fake_server):
    python, model = comet_env
    settings.COMET_PYTHON, settings.COMET_MODEL = str(python), str(model)
    fake_server.wrong = {ROWS[0]["instruction"]}  # the endpoint copies the "sky" instruction in every language
    job = translation_job_create(instruction_set=instruction_set, languages=LANGUAGES,
                                 translators=[llm_translator.id, endpoint_translator.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.failure_count == 0, job.failures
    scorer = f"comet-kiwi:{model.name}"
    for code in LANGUAGES:
        assert job.per_language[code]["scorer"] == scorer and job.per_language[code]["scorer_error"] == ""

    translations = list(Translation.objects.filter(job=job).select_related("row"))
    assert len(translations) == 6
    assert all(candidate["scorer"] == scorer for t in translations for candidate in t.candidates)
    chosen = [t for t in translations if t.chosen]
    assert chosen, "the hand-made translations of the add row are acceptable"
    sources = {row["id"]: row for row in ROWS}
    pairs, owners = [], []
    for translation in chosen:
        for name, text in _fields(translation).items():
            pairs.append((sources[translation.row.external_id][name], text))
            owners.append((translation.pk, len(pairs[-1][0])))
    # comet's own predict, and Crossfeed's scorer called directly, on the chosen fields plus a copy of a source.
    pairs.append((ROWS[0]["instruction"], ROWS[0]["instruction"]))
    expected = _predict(python, model, pairs)
    progress: list[int] = []
    direct = comet_score(CometConfig(str(python), str(model)), pairs, on_progress=progress.append)
    assert direct == pytest.approx(expected, abs=2e-3) and progress == [len(pairs)]
    assert len({round(score, 2) for score in direct}) > len(pairs) // 2 and all(0 < v < 1 for v in direct)
    assert comet_score(CometConfig(str(python), str(model)), []) == []
    expected = expected[:-1]
    for translation in chosen:
        mine = [(score, weight) for score, (pk, weight) in zip(expected, owners, strict=True)
                if pk == translation.pk]
        comet = sum(score * weight for score, weight in mine) / sum(weight for _, weight in mine)
        # The worker batches the pairs differently; the tiny model's widened last layer turns float noise into
        # about 1e-4, hence the tolerance.
        assert translation.components["comet_kiwi"] == pytest.approx(comet, abs=2e-3)
        assert translation.quality == pytest.approx(comet, abs=2e-3)  # no hard failure: COMET's score as it is
        best = max(c["score"] for c in translation.candidates if not set(c["flags"]) & {"copy_of_source",
                                                                                        "wrong_language",
                                                                                        "wrong_script", "empty",
                                                                                        "truncated",
                                                                                        "translator_failed",
                                                                                        "segments_lost"})
        assert translation.quality == best
    # The fallback would have given the hand-made translations about 1.0; COMET's (random) scores are its own.
    assert any(abs(t.quality - t.components["fallback"]) > 0.05 for t in chosen)

    for code in LANGUAGES:
        sky = next(t for t in translations if t.row.external_id == "sky" and t.language_id == code)
        fake = next(c for c in sky.candidates if c["translator"] == "fake-mt")
        # Not acceptable whatever COMET thought of the copy (its field's score is capped at 0.1 x COMET's).
        assert "copy_of_source" in fake["flags"]
        assert not (sky.chosen and sky.translator_label == "fake-mt")
        assert sky.chosen or job.per_language[code]["not_acceptable"] >= 1


@pytest.mark.slow
def test_a_scorer_that_fails_or_times_out_at_run_time_leaves_the_job_on_the_fallback_and_says_so(
        comet_env, settings, instruction_set, endpoint_translator, tmp_path):
    python, model = comet_env
    broken = tmp_path / "broken-kiwi"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    (broken / "hparams.yaml").write_text((model / "hparams.yaml").read_text())
    with pytest.raises(CometFailed, match=r"failed: .*UnpicklingError|failed: .*Error"):
        comet_score(CometConfig(str(python), str(broken)), [("a", "b")])
    with pytest.raises(CometFailed, match="took more than 1 s for 1 pairs and was stopped"):
        comet_score(CometConfig(str(python), str(model), seconds_per_thousand=1), [("a", "b")])

    settings.COMET_PYTHON, settings.COMET_MODEL = str(python), str(broken)
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    failure = job.failures[-1]
    assert job.failure_count == 1 and failure["translator"] == "COMET-Kiwi"
    assert failure["message"].startswith(COMET_FELL_BACK) and str(broken) in failure["message"]
    assert job.per_language["sw"]["scorer"] == "fallback"
    assert job.per_language["sw"]["scorer_error"].startswith(COMET_FELL_BACK)
    chosen = Translation.objects.filter(job=job, chosen=True)
    assert chosen.count() == 2 and all("comet_kiwi" not in t.components and t.quality > 0.8 for t in chosen)


def test_settings_that_point_nowhere_refuse_the_job_with_nothing_stored(settings, instruction_set,
                                                                        endpoint_translator, tmp_path):
    model = tmp_path / "kiwi"
    (model / "checkpoints").mkdir(parents=True)
    (model / "checkpoints" / "model.ckpt").write_bytes(b"")
    cases = [
        ("", str(model), "CROSSFEED_COMET_MODEL is set but CROSSFEED_COMET_PYTHON is not"),
        (str(tmp_path / "no-python"), str(model), "is not an executable file"),
        (sys.executable, str(tmp_path / "no-model"), "has no checkpoint"),
        (sys.executable, str(model), "has no `comet` module"),  # .venv cannot have it (numpy 2, transformers 5)
    ]
    for python, checkpoint, message in cases:
        settings.COMET_PYTHON, settings.COMET_MODEL = python, checkpoint
        with pytest.raises(Conflict, match=message) as refused:
            translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                   translators=[endpoint_translator.id], enqueue=False)
        assert refused.value.message.startswith("COMET-Kiwi is configured but cannot run: ")
    assert TranslationJob.objects.count() == 0


def test_settings_broken_after_creation_leave_the_job_on_the_fallback_recorded(settings, instruction_set,
                                                                              endpoint_translator, tmp_path):
    settings.COMET_PYTHON, settings.COMET_MODEL = "", ""
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    settings.COMET_PYTHON, settings.COMET_MODEL = str(tmp_path / "gone" / "python"), str(tmp_path / "gone")
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.failure_count == 1 and "is not an executable file" in job.failures[-1]["message"]
    assert job.per_language["sw"]["scorer"] == "fallback"
    translations = Translation.objects.filter(job=job)
    assert all(c["scorer"] == "fallback" for t in translations for c in t.candidates)
    assert all(t.chosen and "comet_kiwi" not in t.components for t in translations)


def test_without_the_settings_jobs_use_the_fallback_as_before(settings, instruction_set, endpoint_translator):
    settings.COMET_PYTHON, settings.COMET_MODEL = "", ""
    job = translation_job_create(instruction_set=instruction_set, languages=["sw"],
                                 translators=[endpoint_translator.id], enqueue=False)
    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED and job.failure_count == 0
    assert job.per_language["sw"]["scorer"] == "fallback" and job.per_language["sw"]["scorer_error"] == ""


def test_model_names_as_recorded():
    assert model_name("/models/wmt22-cometkiwi-da") == "wmt22-cometkiwi-da"
    assert model_name("/models/wmt22-cometkiwi-da/checkpoints/model.ckpt") == "wmt22-cometkiwi-da"
    assert model_name("/hf/hub/models--Unbabel--wmt22-cometkiwi-da/snapshots/abc123") == "Unbabel/wmt22-cometkiwi-da"
    assert model_name("/hf/hub/models--Unbabel--wmt22-cometkiwi-da/snapshots/abc123/checkpoints/model.ckpt") == \
        "Unbabel/wmt22-cometkiwi-da"
