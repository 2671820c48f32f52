"""Issue 11, points 5 and 7 for training: every parameter within the real range of its field (finite, within what
the database and the libraries hold), optim / lr_scheduler_type / attn_implementation from the choices the installed
transformers accepts, sft_data.file only from the upload folder, and no 500 from an SFT upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Export
from training.models import TrainingRun
from training.scripts.config import (
    ConfigError,
    DPORunConfig,
    SFTRunConfig,
    attention_implementations,
    config_from_dict,
    optimizer_names,
    scheduler_names,
)
from training.services.runs import uploads_root

pytestmark = pytest.mark.usefixtures("media")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


def create(admin_api, body: dict):
    return admin_api.post(reverse("api-training-runs"), body, format="json")


def dpo_body(base, export, **extra) -> dict:
    return {"kind": "dpo", "base_model": base.id, "export": export.id, **extra}


# Each: params, then the start of the message (after "dpo: "), which names the field and the allowed range.
ABSURD_PARAMS = [
    ({"learning_rate": "inf"}, "learning_rate: must be a finite number"),
    ({"learning_rate": "nan"}, "learning_rate: must be a finite number"),
    ({"learning_rate": "1e400"}, "learning_rate: must be a finite number"),
    ({"learning_rate": 50}, "learning_rate: must be positive and at most 10"),
    ({"max_steps": 2**63}, "max_steps: must be -1 (train num_train_epochs) or from 1 to 2147483647"),
    ({"max_steps": 2**31}, "max_steps: must be -1 (train num_train_epochs) or from 1 to 2147483647"),
    ({"max_steps": 1e20}, "max_steps: expected an integer"),
    ({"max_steps": int("9" * 4000)}, "max_steps: must be -1"),
    ({"per_device_train_batch_size": 10**9}, "per_device_train_batch_size: must be from 1 to 4096"),
    ({"per_device_eval_batch_size": 10**9}, "per_device_eval_batch_size: must be from 1 to 4096"),
    ({"gradient_accumulation_steps": 10**6}, "gradient_accumulation_steps: must be from 1 to 4096"),
    ({"lora_r": 10**6}, "lora_r: must be from 1 to 64 (the model's hidden_size)"),
    ({"lora_alpha": 10**9}, "lora_alpha: must be from 1 to 65536"),
    ({"lora_dropout": "nan"}, "lora_dropout: must be a finite number"),
    ({"lora_target_modules": []}, "lora_target_modules: give a list of 1 to 64 module names"),
    ({"optim": "adamw_banana"}, "optim: unknown 'adamw_banana'"),
    ({"optim": "import os"}, "optim: unknown 'import os'"),
    ({"lr_scheduler_type": "cosine_wobble"}, "lr_scheduler_type: unknown 'cosine_wobble'"),
    ({"attn_implementation": "kernels-community/flash-attn"}, "attn_implementation: unknown"),
    ({"attn_implementation": "../../etc"}, "attn_implementation: unknown"),
    ({"bf16": "maybe"}, "bf16: must be true, false or auto"),
    ({"use_liger_kernel": "sometimes"}, "use_liger_kernel: must be true, false or auto"),
    ({"warmup_steps": 1.5}, "warmup_steps: must be in [0, 1)"),
    ({"warmup_steps": 2**40}, "warmup_steps: must be from 0 to 2147483647"),
    ({"weight_decay": -0.1}, "weight_decay: must be in [0, 10]"),
    ({"weight_decay": "inf"}, "weight_decay: must be a finite number"),
    ({"num_train_epochs": 1e9}, "num_train_epochs: must be positive and at most 10000"),
    ({"num_train_epochs": "-inf"}, "num_train_epochs: must be a finite number"),
    ({"save_steps": 2**40}, "save_steps: must be from 1 to 2147483647"),
    ({"logging_steps": 0}, "logging_steps: must be from 1 to 2147483647"),
    ({"eval_steps": 2**40}, "eval_steps: must be from 1 to 2147483647"),
    ({"save_total_limit": 2**40}, "save_total_limit: must be from 1 to 2147483647"),
    ({"seed": 2**40}, "seed: must be from 0 to 2147483647"),
    ({"max_length": 10**9}, "max_length: must be from 1 to 1048576"),
    ({"dpo": {"beta": 1e9}}, "beta: must be positive and at most 100"),
    ({"dpo": {"beta": "inf"}}, "beta: must be a finite number"),
    ({"dpo": {"max_prompt_length": 2**63}}, "max_prompt_length: must be between 1 and max_length - 1"),
]


@pytest.mark.parametrize("params, message", ABSURD_PARAMS)
def test_the_api_refuses_an_absurd_parameter_naming_it_and_its_range(admin_api, base, preference_export, params,
                                                                      message):
    response = create(admin_api, dpo_body(base, preference_export, params=params))
    assert response.status_code == 400, response.content[:300]
    assert list(response.json()) == ["params"], response.json()
    [text] = response.json()["params"]
    assert text.startswith(f"dpo: {message}"), text
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("change, message", [
    ({"num_processes": 64}, "a whole number from 1 to 8"),
    ({"num_processes": 2**70}, "a whole number from 1 to 8"),
    ({"seed": 2**63}, "a whole number from 0 to 2147483647"),
])
def test_the_api_refuses_absurd_run_settings(admin_api, base, preference_export, change, message):
    response = create(admin_api, dpo_body(base, preference_export, **change))
    assert response.status_code == 400, response.content[:300]
    [field] = change
    assert message in response.json()[field][0]
    assert not TrainingRun.objects.exists()


def test_the_most_processes_is_a_setting_capped_by_the_database(admin_api, base, preference_export, settings):
    settings.CROSSFEED = {**settings.CROSSFEED, "MAX_TRAINING_PROCESSES": 1000}
    response = create(admin_api, dpo_body(base, preference_export, num_processes=65))
    assert response.status_code == 400 and "from 1 to 64" in response.json()["num_processes"][0]
    settings.CROSSFEED = {**settings.CROSSFEED, "MAX_TRAINING_PROCESSES": 2}
    assert create(admin_api, dpo_body(base, preference_export, num_processes=3)).status_code == 400
    assert create(admin_api, dpo_body(base, preference_export, num_processes=2)).status_code == 201


def test_the_api_accepts_every_choice_transformers_offers(admin_api, base, preference_export):
    params = {"optim": "adafactor", "lr_scheduler_type": "cosine_with_min_lr", "attn_implementation": "eager",
              "learning_rate": 10, "lora_r": 64, "warmup_steps": 0.5, "max_steps": 2**31 - 1, "bf16": "auto"}
    response = create(admin_api, dpo_body(base, preference_export, params=params))
    assert response.status_code == 201, response.json()
    assert TrainingRun.objects.get().resolved["dpo"]["optim"] == "adafactor"


def test_an_epoch_count_whose_steps_overflow_the_step_columns_is_refused(admin_api, base, preference_export):
    # The export claims a billion training rows: at 8 x 4 rows per step, 10,000 epochs are 3.1e11 steps.
    files = [{**entry, "rows": 10**9} if entry["name"].startswith("train.") else entry
             for entry in preference_export.files]
    Export.objects.filter(pk=preference_export.pk).update(files=files)
    response = create(admin_api, dpo_body(base, preference_export, params={"num_train_epochs": 10_000}))
    assert response.status_code == 400, response.content[:300]
    assert "num_train_epochs: 10000 epochs of 1000000000 rows" in response.json()["params"][0]
    assert create(admin_api, dpo_body(base, preference_export, params={"num_train_epochs": 10_000,
                                                                       "max_steps": 100})).status_code == 201


# --- sft_data.file: the upload folder only -----------------------------------------------------------------------


def sft_body(base, path: str) -> dict:
    return {"kind": "sft", "base_model": base.id, "sft_data": {"file": path}}


@pytest.mark.parametrize("path", ["/proc/self/environ", "/etc/passwd", "relative.jsonl", "../../../../etc/passwd"])
def test_sft_data_file_outside_the_upload_folder_is_refused_unread(admin_api, base, path):
    response = create(admin_api, sft_body(base, path))
    assert response.status_code == 400, response.content[:300]
    text = response.content.decode()
    assert "upload" in response.json()["sft_data"][0], text
    assert "PATH=" not in text and "root:" not in text  # nothing of the file came back
    assert not TrainingRun.objects.exists()


def test_sft_data_file_with_dot_dot_is_refused_even_when_it_lands_in_the_folder(admin_api, base, uploaded_sft_file):
    sneaky = f"{uploaded_sft_file.parent}/../uploads/{uploaded_sft_file.name}"
    response = create(admin_api, sft_body(base, sneaky))
    assert response.status_code == 400 and "'..'" in response.json()["sft_data"][0]


def test_sft_data_file_through_a_symlink_out_of_the_folder_is_refused(admin_api, base, uploaded_sft_file, sft_file):
    link = uploaded_sft_file.parent / "link.jsonl"
    link.symlink_to(sft_file)  # a valid SFT file, but outside the folder
    response = create(admin_api, sft_body(base, str(link)))
    assert response.status_code == 400 and "not a file in the upload folder" in response.json()["sft_data"][0]
    folder_link = uploaded_sft_file.parent / "elsewhere"
    folder_link.symlink_to(sft_file.parent, target_is_directory=True)
    response = create(admin_api, sft_body(base, str(folder_link / sft_file.name)))
    assert response.status_code == 400 and "not a file in the upload folder" in response.json()["sft_data"][0]


def test_sft_data_file_in_a_subfolder_or_half_written_is_refused(admin_api, base, uploaded_sft_file):
    nested = uploads_root() / "deeper"
    nested.mkdir()
    (nested / "x.jsonl").write_bytes(uploaded_sft_file.read_bytes())
    partial = uploads_root() / ".x.jsonl.part"
    partial.write_bytes(uploaded_sft_file.read_bytes())
    for path in (nested / "x.jsonl", partial):
        response = create(admin_api, sft_body(base, str(path)))
        assert response.status_code == 400, path


def test_sft_data_file_from_an_upload_is_accepted(admin_api, base, uploaded_sft_file):
    response = create(admin_api, sft_body(base, str(uploaded_sft_file)))
    assert response.status_code == 201, response.json()
    assert TrainingRun.objects.get().sft_file == str(uploaded_sft_file)


# --- SFT uploads that broke the parser ---------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: the JSON is nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "a"}]}\n' + b"[" * 100_000 + b"\n",
     "line 2: the JSON is nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "x \\ud800"}]}\n', "line 1: messages[0] holds a lone surrogate"),
])
def test_an_sft_upload_that_breaks_the_json_parser_is_a_400_naming_the_line(admin_api, content, message):
    upload = {"file": SimpleUploadedFile("mine.jsonl", content, content_type="application/x-ndjson")}
    response = admin_api.post(reverse("api-training-uploads"), upload, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert f"mine.jsonl {message}" in response.json()["file"][0]
    assert list(uploads_root().iterdir()) == []


def test_the_admin_new_run_form_shows_a_deeply_nested_upload_as_a_form_error(client, admin_user, base):
    client.force_login(admin_user)
    response = client.post(reverse("admin:training_trainingrun_new"), {
        "kind": "sft", "base_model": base.id, "num_processes": 1, "seed": 42, "params": "{}",
        "sft_upload": SimpleUploadedFile("deep.jsonl", b"[" * 100_000),
    })
    assert response.status_code == 200
    assert "nested too deeply" in response.content.decode()
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("params, message", [
    ('{"optim": "\\ud800"}', "optim: a lone surrogate escape (U+D800) is not a character"),
    ('{"lora_target_modules": ["q_proj", "\\udfff"]}', "lora_target_modules[1]: a lone surrogate escape (U+DFFF)"),
    ("[" * 100_000, "The JSON is nested too deeply."),
])
def test_the_admin_new_run_form_shows_unparsable_params_as_a_form_error(client, admin_user, base, preference_export,
                                                                        params, message):
    client.force_login(admin_user)
    response = client.post(reverse("admin:training_trainingrun_new"), {
        "kind": "dpo", "base_model": base.id, "export": preference_export.id, "num_processes": 1, "seed": 42,
        "params": params,
    })
    assert response.status_code == 200
    assert message in response.context["form"].errors["params"][0]
    assert not TrainingRun.objects.exists()


# --- the pure config functions (Django-free) ---------------------------------------------------------------------


@pytest.fixture
def dpo_values(tiny_model_dir, tmp_path) -> dict:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": [], "chosen": [], "rejected": []}) + "\n")
    return {"model_name_or_path": str(tiny_model_dir), "output_dir": str(tmp_path / "out"),
            "train_file": str(pairs)}


@pytest.mark.parametrize("params, message", ABSURD_PARAMS)
def test_the_config_refuses_an_absurd_parameter_naming_it_and_its_range(dpo_values, params, message):
    values = {**dpo_values, **params.get("dpo", params)}
    with pytest.raises(ConfigError) as refused:
        config_from_dict(values, DPORunConfig, check_environment=False)
    assert str(refused.value).startswith(message), str(refused.value)


def test_the_config_refuses_a_lone_surrogate_in_a_text_field(dpo_values):
    with pytest.raises(ConfigError, match="lora_target_modules: contains a lone surrogate"):
        config_from_dict({**dpo_values, "lora_target_modules": ["q_proj", "v\ud800"]}, SFTRunConfig,
                         check_environment=False)


def test_the_choices_are_exactly_those_of_the_installed_transformers():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    assert optimizer_names() == tuple(member.value for member in OptimizerNames)
    assert scheduler_names() == tuple(member.value for member in SchedulerType)
    assert set(attention_implementations()) == {"eager", *ALL_ATTENTION_FUNCTIONS.valid_keys()}


def test_validating_a_config_imports_neither_torch_nor_transformers(dpo_values):
    # The web process validates every run before queueing it; torch would cost it seconds and hundreds of MB.
    script = (
        "import json, sys\n"
        "from training.scripts.config import DPORunConfig, config_from_dict\n"
        f"values = json.loads({json.dumps(json.dumps(dpo_values))})\n"
        "values.update(optim='adamw_torch_fused', lr_scheduler_type='linear', attn_implementation='sdpa')\n"
        "config_from_dict(values, DPORunConfig, check_environment=False)\n"
        "print(sorted(name for name in ('torch', 'transformers', 'django') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
