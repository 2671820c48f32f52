"""Fixtures of the translation tests: a small Alpaca set in English, the tiny causal model as an llm translator, a
real local OpenAI-compatible server that answers with hand-made translations as an endpoint translator, and the
tiny seq2seq model (tests/translation/fake_translator.py, translation/backends/tiny_seq2seq.py)."""

import io
import json

import pytest

from tests.generation.conftest import one_torch_thread, tiny_model_dir  # noqa: F401 - fixtures shared
from tests.translation.fake_translator import ROWS, FakeTranslator


@pytest.fixture(autouse=True)
def job_dirs(settings, tmp_path):
    """Jobs' folders in this test's own folder: rolled-back tests reuse job ids."""
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR / "translation"


@pytest.fixture
def instruction_set(db):
    from instructions.services.sets import instruction_set_import

    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS).encode()
    return instruction_set_import(name="tiny alpaca", source=io.BytesIO(body), language="en",
                                  source_name="tiny.jsonl")


@pytest.fixture
def fake_server():
    with FakeTranslator() as server:
        yield server


@pytest.fixture
def endpoint_translator(db, fake_server, settings):
    from generation.models import Endpoint
    from translation.services.translators import translator_create

    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [fake_server.host]
    endpoint = Endpoint.objects.create(name="fake", base_url=fake_server.base_url, model="fake-model",
                                       timeout_seconds=1.0, max_retries=0, concurrency=1)
    return translator_create(name="fake-mt", kind="endpoint", endpoint=endpoint.id)


@pytest.fixture
def llm_translator(db, tiny_model_dir):  # noqa: F811 - the shared fixture
    from training.services.registry import base_model_register
    from translation.services.translators import translator_create

    base = base_model_register(name="tiny", path=str(tiny_model_dir))
    return translator_create(name="tiny-llm", kind="llm", base_model=base.id, max_new_tokens=8)


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory):
    from translation.backends.tiny_seq2seq import build_tiny_seq2seq

    texts = [row["instruction"] + " " + row["output"] for row in ROWS] * 3
    return build_tiny_seq2seq(tmp_path_factory.mktemp("tiny-mt") / "tiny-mt", texts)
