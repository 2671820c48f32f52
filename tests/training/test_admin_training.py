"""Training in the admin: pages, the New-training-run form, the run actions, and "Train on this export"."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Export, JobStatus
from annotation.services.exports import export_create, export_run
from training.models import BaseModel, ModelVersion, TrainingRun
from training.services.runs import params_template, preset, training_run_create

pytestmark = pytest.mark.usefixtures("media")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def form_body(base, **fields) -> dict:
    return {"kind": "dpo", "base_model": base.id, "num_processes": 1, "seed": 42, "params": "{}", **fields}


def test_the_training_admin_pages_render(staff, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    for url in [reverse("admin:training_basemodel_changelist"), reverse("admin:training_basemodel_add"),
                reverse("admin:training_basemodel_change", args=[base.id]),
                reverse("admin:training_modelversion_changelist"), reverse("admin:training_trainingrun_changelist"),
                reverse("admin:training_trainingrun_change", args=[run.id]),
                reverse("admin:training_trainingrun_new")]:
        response = staff.get(url)
        assert response.status_code == 200, url
    changelist = staff.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "<progress" in changelist and reverse("training:run", args=[run.id]) in changelist


def test_add_leads_to_the_new_run_form(staff, db):
    response = staff.get(reverse("admin:training_trainingrun_add") + "?kind=sft")
    assert response["Location"] == reverse("admin:training_trainingrun_new") + "?kind=sft"


def test_the_base_model_form_applies_the_registry_rules(staff, admin_user, base, tiny_model_dir, tmp_path):
    url = reverse("admin:training_basemodel_add")
    response = staff.post(url, {"name": "Tiny", "path": str(tmp_path), "chat_template": "", "notes": "",
                                "versions-TOTAL_FORMS": 0, "versions-INITIAL_FORMS": 0})
    errors = response.context["adminform"].form.errors
    assert "already exists" in errors["name"][0] and "no config.json" in errors["path"][0]
    response = staff.post(url, {"name": "tiny copy", "path": str(tiny_model_dir), "chat_template": "", "notes": "",
                                "chat_template_name": "alpaca", "versions-TOTAL_FORMS": 0,
                                "versions-INITIAL_FORMS": 0})
    assert response.status_code == 302
    registered = BaseModel.objects.get(name="tiny copy")
    assert registered.created_by == admin_user and registered.chat_template_name == "alpaca"


def test_the_new_run_form_is_prefilled_with_the_presets_of_the_kind(staff, base, preference_export):
    response = staff.get(reverse("admin:training_trainingrun_new") + f"?kind=dpo&export={preference_export.id}")
    form = response.context["form"]
    assert form.initial["export"] == str(preference_export.id)
    params = json.loads(form["params"].value() if isinstance(form["params"].value(), str)
                        else json.dumps(form["params"].value()))
    assert set(params) == {"dpo"} and params["dpo"]["beta"] == preset("dpo")["beta"] and "seed" not in params["dpo"]
    assert set(params_template("sft_dpo")) == {"sft", "dpo"}
    html = response.content.decode()
    assert f'<option value="{preference_export.id}" selected>' in html
    assert "&quot;lora_r&quot;: 8" in html  # indented JSON in the textarea


def test_the_new_run_form_queues_a_run_and_opens_its_page(staff, admin_user, base, preference_export,
                                                          django_capture_on_commit_callbacks):
    params = {"max_steps": 5, "dpo": {"beta": 0.2}, "sft": {"packing": False}}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff.post(reverse("admin:training_trainingrun_new"),
                              form_body(base, export=preference_export.id, params=json.dumps(params), seed=7))
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:run", args=[run.id])
    assert len(callbacks) == 1  # queued on commit
    assert run.params == {"max_steps": 5, "dpo": {"beta": 0.2}}  # the stage this kind does not run is dropped
    assert (run.seed, run.created_by, run.resolved["dpo"]["beta"]) == (7, admin_user, 0.2)


def test_the_new_run_form_takes_an_uploaded_sft_file(staff, base, media, sft_file):
    upload = SimpleUploadedFile("mine.jsonl", sft_file.read_bytes())
    response = staff.post(reverse("admin:training_trainingrun_new"), form_body(base, kind="sft", sft_upload=upload))
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.sft_file.startswith(str(media / "training" / "uploads")) and run.sft_export is None


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"export": ""}, "export", "DPO needs a preference export"),
        ({"params": '{"learing_rate": 1}'}, "params", "learing_rate: unknown setting"),
        ({"params": "[1, 2]"}, "params", "Expected a JSON object"),
        ({"params": "{not json"}, "params", "Enter a valid JSON"),
        ({"num_processes": 0}, "num_processes", "greater than or equal to 1"),
        ({"kind": "sft", "export": ""}, "sft_export", "SFT needs data"),
        ({"kind": "sft", "sft_upload": "bad"}, "sft_upload", "mine.jsonl line 1: not valid JSON"),
    ],
)
def test_the_new_run_form_shows_errors_on_the_fields(staff, base, preference_export, media, fields, field,
                                                     message):
    body = form_body(base, export=preference_export.id)
    body.update(fields)
    if body.get("sft_upload") == "bad":
        body["sft_upload"] = SimpleUploadedFile("mine.jsonl", b"{oops\n")
    response = staff.post(reverse("admin:training_trainingrun_new"), body)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert "errornote" in response.content.decode()
    assert not TrainingRun.objects.exists()
    uploads = media / "training" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_the_actions_cancel_and_retry(staff, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    url = reverse("admin:training_trainingrun_changelist")
    staff.post(url, {"action": "cancel_runs", "_selected_action": [run.id]})
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.CANCELLED
    response = staff.post(url, {"action": "cancel_runs", "_selected_action": [run.id]}, follow=True)
    assert "nothing to cancel" in response.content.decode()
    staff.post(url, {"action": "retry_runs", "_selected_action": [run.id]})
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.QUEUED


def test_retrain_uses_the_campaigns_newest_exports(staff, admin_user, base, preference_export, sft_export, judged):
    run = training_run_create(kind="sft_dpo", base_model=base, export=preference_export, sft_export=sft_export,
                              params={"max_steps": 3}, num_processes=2, seed=5, enqueue=False)
    newer = export_run(export_id=export_create(campaign=judged, created_by=admin_user, test_fraction=0.0,
                                               enqueue=False).id)
    unfinished = export_create(campaign=judged, created_by=admin_user, test_fraction=0.0, enqueue=False)
    assert unfinished.status == JobStatus.QUEUED
    staff.post(reverse("admin:training_trainingrun_changelist"),
               {"action": "retrain_with_newest_export", "_selected_action": [run.id]})
    new = TrainingRun.objects.exclude(pk=run.pk).get()
    assert (new.kind, new.base_model, new.params, new.num_processes, new.seed) == ("sft_dpo", base, {"max_steps": 3},
                                                                                   2, 5)
    assert new.export == newer and new.sft_export == sft_export  # no newer SFT export: the same one
    assert new.created_by == admin_user and new.status == JobStatus.QUEUED


def test_retrain_keeps_an_uploaded_sft_file(staff, base, uploaded_sft_file):
    run = training_run_create(kind="sft", base_model=base, sft_file=str(uploaded_sft_file), enqueue=False)
    staff.post(reverse("admin:training_trainingrun_changelist"),
               {"action": "retrain_with_newest_export", "_selected_action": [run.id]})
    assert TrainingRun.objects.exclude(pk=run.pk).get().sft_file == run.sft_file


def test_train_on_this_export_opens_the_new_run_form(staff, preference_export, sft_export):
    url = reverse("admin:annotation_export_changelist")
    response = staff.post(url, {"action": "train_on_export", "_selected_action": [preference_export.id]})
    assert response.status_code == 302
    assert response["Location"] == (reverse("admin:training_trainingrun_new")
                                    + f"?kind=dpo&export={preference_export.id}")
    response = staff.post(url, {"action": "train_on_export", "_selected_action": [sft_export.id]})
    assert response["Location"].endswith(f"?kind=sft&sft_export={sft_export.id}")


def test_train_on_this_export_wants_one_finished_export(staff, judged, admin_user, preference_export):
    queued = export_create(campaign=judged, created_by=admin_user, enqueue=False)
    url = reverse("admin:annotation_export_changelist")
    response = staff.post(url, {"action": "train_on_export", "_selected_action": [queued.id]}, follow=True)
    assert "only a finished export can be trained on" in response.content.decode()
    response = staff.post(url, {"action": "train_on_export", "_selected_action": [queued.id, preference_export.id]},
                          follow=True)
    assert "Select exactly one export" in response.content.decode()


def test_annotation_does_not_import_the_apps_built_on_it():
    """annotation is the base: training, evaluation, generation, instructions and translation depend on it, never
    the other way (they reach it through settings-named functions: CROSSFEED_DEMO_EXTRAS, the post-edit recorder)."""
    import pathlib
    import re

    above = re.compile(r"^\s*(from|import) (training|evaluation|generation|instructions|translation)\b", re.MULTILINE)
    for path in pathlib.Path("annotation").rglob("*.py"):
        assert not above.search(path.read_text(encoding="utf-8")), path


def test_model_versions_are_read_only(staff, base, preference_export):
    run = training_run_create(kind="dpo", base_model=base, export=preference_export, enqueue=False)
    version = ModelVersion.objects.create(name="v", base_model=base, run=run, kind="dpo", adapter_path="/x/adapter",
                                          export=preference_export)
    response = staff.get(reverse("admin:training_modelversion_change", args=[version.id]))
    assert response.status_code == 200 and 'name="name"' not in response.content.decode()
    assert staff.get(reverse("admin:training_modelversion_add")).status_code == 403
    page = staff.get(reverse("admin:training_modelversion_changelist") + f"?base_model__id__exact={base.id}&kind=dpo")
    assert page.status_code == 200 and reverse("training:run", args=[run.id]) in page.content.decode()
    assert Export.objects.filter(pk=preference_export.pk).exists()
