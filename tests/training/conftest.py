import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny random Llama model, built once per test session from the platform's texts."""
    from training.services.registry import tiny_model_build

    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    tiny_model_build(output_dir=folder, register=False)
    return folder
