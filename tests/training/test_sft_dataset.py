"""Training on an instruction set's SFT export: sft_data's third form {"instruction_export": id} through the service,
the API and the admin's New-training-run form (TrainingRun.sft_dataset); the train file is the export's sft-all.jsonl,
or its one language file; only a succeeded export is taken. And a real SFT run of the tiny model on such an export."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.urls import reverse

from annotation.models import JobStatus
from crossfeed.errors import InvalidInput
from instructions.models import InstructionExport
from instructions.services.exports import export_folder, instruction_export_create, instruction_export_run
from tests.instructions.test_sft_export import translated_set
from tests.training.conftest import FAST
from training.models import ModelVersion, TrainingRun
from training.services.execution import training_run_execute
from training.services.runs import training_run_create, training_run_retrain

# media and base come from tests/training/conftest.py.
pytestmark = pytest.mark.usefixtures("media")


def instruction_export(**kwargs) -> InstructionExport:
    instruction_set, _job = translated_set()
    export = instruction_export_create(instruction_set=instruction_set, enqueue=False, **kwargs)
    return instruction_export_run(export_id=export.id)


@pytest.fixture
def dataset(db, media) -> InstructionExport:
    export = instruction_export()
    assert export.status == JobStatus.SUCCEEDED, export.error
    return export


def test_a_run_trains_on_the_exports_all_languages_file(base, dataset):
    run = training_run_create(kind="sft", base_model=base, sft_dataset=dataset, enqueue=False)
    assert run.sft_dataset == dataset and (run.sft_export, run.sft_file) == (None, "")
    assert run.resolved["sft"]["train_file"] == str(export_folder(dataset) / "sft-all.jsonl")


def test_an_export_of_one_language_trains_on_that_languages_file(base, db):
    one = instruction_export(languages=["sw"], include_source=False)
    run = training_run_create(kind="sft", base_model=base, sft_dataset=one, enqueue=False)
    assert Path(run.resolved["sft"]["train_file"]).name == "sft-sw.jsonl"


def test_an_unfinished_export_and_two_kinds_of_data_are_refused(base, dataset, uploaded_sft_file):
    queued = instruction_export_create(instruction_set=dataset.instruction_set, enqueue=False)
    with pytest.raises(InvalidInput, match=f"instruction set export {queued.id} is queued") as refused:
        training_run_create(kind="sft", base_model=base, sft_dataset=queued, enqueue=False)
    assert refused.value.field == "sft_dataset"
    with pytest.raises(InvalidInput, match="give one kind of SFT data") as refused:
        training_run_create(kind="sft", base_model=base, sft_dataset=dataset, sft_file=str(uploaded_sft_file),
                            enqueue=False)
    assert refused.value.field == "sft_data"
    assert not TrainingRun.objects.exists()


def test_retrain_takes_the_newest_export_of_the_same_set(base, dataset):
    run = training_run_create(kind="sft", base_model=base, sft_dataset=dataset, enqueue=False)
    newer = instruction_export_run(export_id=instruction_export_create(
        instruction_set=dataset.instruction_set, languages=["zh-Hans"], enqueue=False).id)
    again = training_run_retrain(run=run)
    assert again.sft_dataset == newer and again.sft_file == ""


def test_the_api_takes_sft_data_instruction_export_and_shows_it(api, admin_user, base, dataset):
    client = api(admin_user)
    body = {"kind": "sft", "base_model": base.id, "sft_data": {"instruction_export": dataset.id}}
    response = client.post(reverse("api-training-runs"), body, format="json")
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    assert client.get(reverse("api-training-run", args=[run_id])).json()["sft_dataset"] == dataset.id
    assert [run["sft_dataset"] for run in client.get(reverse("api-training-runs")).json()] == [dataset.id]


@pytest.mark.parametrize("sft_data, message", [
    ({"instruction_export": 999999}, "does not exist"),
    ({"instruction_export": "x"}, "Incorrect type"),
    ("queued", "is queued: only a succeeded export"),
    ("two", "give one of"),
])
def test_the_api_refuses_bad_instruction_exports_on_sft_data(api, admin_user, base, dataset, sft_data, message):
    if sft_data == "queued":
        queued = instruction_export_create(instruction_set=dataset.instruction_set, enqueue=False)
        sft_data = {"instruction_export": queued.id}
    elif sft_data == "two":
        sft_data = {"instruction_export": dataset.id, "file": "/tmp/x.jsonl"}
    body = {"kind": "sft", "base_model": base.id, "sft_data": sft_data}
    response = api(admin_user).post(reverse("api-training-runs"), body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()["sft_data"])
    assert not TrainingRun.objects.exists()


def test_the_new_run_form_preselects_the_export_and_the_run_page_shows_it(client, admin_user, base, dataset):
    client.force_login(admin_user)
    url = reverse("admin:training_trainingrun_new")
    page = client.get(f"{url}?sft_dataset={dataset.id}")
    form = page.context["form"]
    assert (form.initial["sft_dataset"], form.initial["kind"]) == (str(dataset.id), "sft")
    assert f"Export {dataset.id} of tiny alpaca: 10 rows in ar, sw, zh-Hans" in page.content.decode()
    response = client.post(url, {"kind": "sft", "base_model": base.id, "sft_dataset": dataset.id, "num_processes": 1,
                                 "seed": 42, "params": "{}"})
    assert response.status_code == 302, response.context["form"].errors
    run = TrainingRun.objects.get()
    assert run.sft_dataset == dataset
    shown = client.get(reverse("training:run", args=[run.id])).content.decode()
    assert "Instruction set export" in shown and f"SFT export {dataset.id} of tiny alpaca" in shown


def test_the_form_refuses_two_kinds_of_sft_data(client, admin_user, base, dataset, sft_export):
    client.force_login(admin_user)
    response = client.post(reverse("admin:training_trainingrun_new"), {
        "kind": "sft", "base_model": base.id, "sft_dataset": dataset.id, "sft_export": sft_export.id,
        "num_processes": 1, "seed": 42, "params": "{}"})
    assert response.status_code == 200
    assert "Choose one kind of SFT data" in str(response.context["form"].errors["sft_dataset"])
    assert not TrainingRun.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sft_on_an_instruction_export_trains_the_tiny_model_and_registers_a_version(base, media):
    dataset = instruction_export()
    assert dataset.status == JobStatus.SUCCEEDED, dataset.error
    run = training_run_create(kind="sft", base_model=base, sft_dataset=dataset, params=FAST, enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail
    version = ModelVersion.objects.get(run=run)
    assert version.kind == "sft" and Path(version.adapter_path).is_dir()
    # The version records the data it was trained on: the export's sft-all.jsonl, by the hash the card gives.
    trained_on = (export_folder(dataset) / "sft-all.jsonl").read_bytes()
    assert version.dataset_sha256 == hashlib.sha256(trained_on).hexdigest() == dataset.files[0]["sha256"]
    assert version.manifest["train_rows"] == dataset.rows == 10
    assert (run.step, run.total_steps) == (4, 4)
