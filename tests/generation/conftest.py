import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny random Llama model, built once per test session from the platform's texts."""
    from training.services.registry import tiny_model_build

    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    tiny_model_build(output_dir=folder, register=False)
    return folder


# --- Django-side fixtures of the generation jobs' tests (JOBS) ---------------------------------------------------


@pytest.fixture(autouse=True)
def job_dirs(settings, tmp_path):
    """Jobs' folders (VAR_DIR/generation/) and exports (MEDIA_ROOT) in this test's own folder: rolled-back tests
    reuse job ids, and a job must never find another test's outputs.jsonl (nor another pytest-xdist worker's, which
    counts job ids from 1 too). Every test here gets it."""
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.VAR_DIR / "generation"


@pytest.fixture(scope="module")
def one_torch_thread():
    """The tiny model's matrices are so small that more threads only wait on each other, and on a busy shared
    machine they wait long (as in tests/evaluation/conftest.py). Restored after the module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_base(db, tiny_model_dir):
    from training.services.registry import base_model_register

    return base_model_register(name="tiny", path=str(tiny_model_dir))


@pytest.fixture
def fake_server():
    from tests.generation.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_endpoint(db, fake_server, settings):
    """An endpoint row for the fake server, its host allowed; one request at a time, 1 s timeout, no retries."""
    from generation.models import Endpoint

    settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [fake_server.host]
    return Endpoint.objects.create(name="fake", base_url=fake_server.base_url, model="fake-model",
                                   timeout_seconds=1.0, max_retries=0, concurrency=1)
