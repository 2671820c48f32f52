"""Who may call what: every URL pattern of the project, visited as four people.

Roles: anonymous; `annotator` (native Tamil, reads Swahili: eligible for the sw→ta items); `outsider` (an
annotator of Arabic, eligible for none of them); `admin` (staff, with no annotator profile).

The matrix is checked against `get_resolver()`: a new URL pattern without a row here fails
`test_it_has_a_matrix_row_for_every_url_pattern`, so nobody adds a view without deciding who may use it. Only
the Django admin's own machinery is left out, by the explicit lists below; views we add to the admin are ours
and need rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from annotation.models import Campaign, Export, Item, JobStatus, Judgment, Lease, Skip
from annotation.services.assignment import lease_next
from annotation.services.campaigns import campaign_create
from annotation.services.exports import export_run
from annotation.services.judgments import judgment_submit
from tests.conftest import item_line, jsonl, new_key, ranks_for
from training.models import BaseModel, TrainingRun

ROLES = ["anonymous", "annotator", "outsider", "admin"]

# The Django admin's own views (AdminSite.get_urls) and the routes every ModelAdmin gets (ModelAdmin.get_urls).
ADMIN_SITE_INTERNALS = {
    "admin:index", "admin:login", "admin:logout", "admin:password_change", "admin:password_change_done",
    "admin:autocomplete", "admin:jsi18n", "admin:view_on_site", "admin:app_list", "admin:auth_user_password_change",
}
MODEL_ADMIN_ROUTE_SUFFIXES = ("_changelist", "_add", "_history", "_delete", "_change")
UNNAMED_ADMIN_ROUTES = ("<path:object_id>/", "(?P<url>.*)$")  # the object redirect and the final catch-all


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # export files


# --- the world every row is visited in --------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, Any]
    campaign: Campaign
    draft: Campaign
    judged_item: Item  # the annotator has judged it
    leased_item: Item  # the annotator holds a lease on it
    free_item: Item  # nobody has touched it


@pytest.fixture
def world(admin_user, annotator, outsider, campaign, items) -> World:
    return make_world(admin_user, annotator, outsider, campaign, items)


def make_world(admin_user, annotator, outsider, campaign, items) -> World:
    """The world itself, for other files' fixtures (tests/test_hardening_security.py visits it as more people)."""
    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    lease = lease_next(campaign=campaign, annotator=annotator)
    draft = campaign_create(name="Draft campaign", created_by=admin_user, status=Campaign.Status.DRAFT)
    free = next(item for item in items if item.id not in (items[0].id, lease.item_id))
    return World(
        users={"anonymous": None, "annotator": annotator, "outsider": outsider, "admin": admin_user},
        campaign=campaign,
        draft=draft,
        judged_item=items[0],
        leased_item=Item.objects.get(pk=lease.item_id),
        free_item=free,
    )


def client_as(world: World, role: str) -> APIClient:
    # Session login for every role: the pages and the API both accept it, so one client serves both.
    client = APIClient()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


# --- expectations -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    """A 302 whose Location starts with the given URL name's path."""

    to: str

    def check(self, response) -> None:
        assert response.status_code == 302, response.content[:500]
        assert response["Location"].startswith(reverse(self.to)), response["Location"]


LOGIN = Redirect("login")
ADMIN_LOGIN = Redirect("admin:login")


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    kwargs: Callable[[World], dict] = lambda world: {}
    expected: dict[str, int | Redirect] = field(default_factory=dict)
    body: Callable[[World], Any] | None = None
    format: str | None = None  # "json" for the API, "multipart" for uploads, None for form posts
    label: str = ""


def campaign_of(world):
    return {"campaign_id": world.campaign.id}


def draft_of(world):
    return {"campaign_id": world.draft.id}


def free_item(world):
    return {"item_id": world.free_item.id}


def leased_item(world):
    return {"item_id": world.leased_item.id}


def judged_item(world):
    return {"item_id": world.judged_item.id}


def skipped_item(world):
    """The free item, skipped by the annotator."""
    Skip.objects.get_or_create(item=world.free_item, annotator=world.users["annotator"])
    return {"item_id": world.free_item.id}


def export_of(world, **fields) -> Export:
    return Export.objects.create(campaign=world.campaign, min_judgments=1, **fields)


def any_export(world):
    return {"export_id": export_of(world).id}


def failed_export(world):
    return {"export_id": export_of(world, status=JobStatus.FAILED, error="worker died").id}


def published_file(world):
    export = export_run(export_id=export_of(world).id)
    assert export.status == JobStatus.SUCCEEDED, export.error
    return {"export_id": export.id, "name": "README.md"}


def form_ranks(world):
    return {**{f"rank_{key}": value for key, value in ranks_for(world.free_item).items()},
            "idempotency_key": new_key()}


def api_ranks(world):
    return {"ranks": ranks_for(world.free_item), "idempotency_key": new_key()}


def new_annotator(world):
    return {"username": "newcomer", "password": "a-long-enough-password-9", "native_languages": ["sw"]}


def new_campaign(world):
    return {"name": "Another campaign", "overlap": 3}


def new_export(world):
    return {"format": "jsonl", "pairs": "all", "min_judgments": 1}


def upload(world):
    return {"file": SimpleUploadedFile("items.jsonl", jsonl([item_line("uploaded-0")]))}


def api_items(world):
    return [item_line("posted-0")]


def everyone(status):
    return dict.fromkeys(ROLES, status)


def signed_in(status, *, anonymous=LOGIN, admin=None):
    return {"anonymous": anonymous, "annotator": status, "outsider": status,
            "admin": status if admin is None else admin}


API_ANON = 401  # token authentication comes first, so DRF answers 401 with a WWW-Authenticate header
ADMIN_ONLY_API = {"anonymous": API_ANON, "annotator": 403, "outsider": 403}
ADMIN_ONLY_PAGE = {"anonymous": ADMIN_LOGIN, "annotator": ADMIN_LOGIN, "outsider": ADMIN_LOGIN}

MATRIX = [
    # Pages.
    Row("home", "GET", expected=signed_in(200)),
    Row("login", "GET", expected={"anonymous": 200, "annotator": Redirect("home"), "outsider": Redirect("home"),
                                  "admin": Redirect("home")}),
    Row("logout", "POST", expected=everyone(Redirect("login"))),
    Row("logout", "GET", expected=everyone(405), label="no state change by GET"),
    Row("ui_language_set", "POST", expected=signed_in(Redirect("home"))),
    Row("ui_language_set", "GET", expected=signed_in(405), label="no state change by GET"),
    # An admin without an annotator profile is sent home with a message.
    Row("annotation:annotate", "GET", campaign_of, signed_in(200, admin=Redirect("home"))),
    Row("annotation:annotate", "GET", draft_of, signed_in(404, admin=Redirect("home")), label="draft"),
    Row("annotation:next", "POST", campaign_of, signed_in(200)),
    Row("annotation:next", "POST", draft_of, signed_in(404, admin=200), label="draft"),
    Row("annotation:mine", "GET", campaign_of, signed_in(200)),
    Row("annotation:mine", "GET", draft_of, signed_in(404, admin=200), label="draft"),
    Row("annotation:submit", "POST", free_item, {"anonymous": LOGIN, "annotator": 200, "outsider": 404,
                                                  "admin": 403}, body=form_ranks),
    Row("annotation:skip", "POST", leased_item, {"anonymous": LOGIN, "annotator": 200, "outsider": 404,
                                                  "admin": 403}),
    # Undo a skip (the annotator's own): back to My judgments; an admin has no annotator profile.
    Row("annotation:unskip", "POST", skipped_item, {"anonymous": LOGIN, "annotator": 302, "outsider": 404,
                                                     "admin": 403}),
    Row("annotation:revise", "GET", judged_item, {"anonymous": LOGIN, "annotator": 200, "outsider": 404,
                                                   "admin": 404}),
    Row("annotation:revise", "GET", free_item, {"anonymous": LOGIN, "annotator": 404, "outsider": 404,
                                                 "admin": 404}, label="not judged"),
    Row("healthz", "GET", expected=everyone(200)),
    Row("favicon", "GET", expected=everyone(301)),
    # Our admin views.
    Row("admin:annotation_campaign_import", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("admin:annotation_campaign_import", "POST", campaign_of,
        {**ADMIN_ONLY_PAGE, "admin": Redirect("admin:annotation_campaign_changelist")}, body=upload,
        format="multipart"),
    Row("admin:annotation_campaign_stats", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("admin:annotation_campaign_quality", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("admin:annotation_campaign_export", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    # An empty form comes back with its errors (200); what matters is who reaches it.
    Row("admin:annotation_campaign_export", "POST", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200},
        body=lambda world: {}),
    # API v1.
    Row("api-languages", "GET", expected=signed_in(200, anonymous=API_ANON)),
    Row("api-annotators", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_annotator, format="json"),
    Row("api-campaigns", "GET", expected=signed_in(200, anonymous=API_ANON)),
    Row("api-campaigns", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_campaign, format="json"),
    Row("api-campaign", "GET", campaign_of, signed_in(200, anonymous=API_ANON)),
    Row("api-campaign", "GET", draft_of, signed_in(404, anonymous=API_ANON, admin=200), label="draft"),
    Row("api-campaign-items", "POST", campaign_of, {**ADMIN_ONLY_API, "admin": 201}, body=api_items, format="json"),
    # The outsider may ask, and gets nothing; an admin has no annotator profile.
    Row("api-campaign-next", "GET", campaign_of, {"anonymous": API_ANON, "annotator": 200, "outsider": 204,
                                                  "admin": 403}),
    Row("api-campaign-next", "POST", campaign_of, {"anonymous": API_ANON, "annotator": 200, "outsider": 204,
                                                   "admin": 403}),
    Row("api-campaign-next", "GET", draft_of, {"anonymous": API_ANON, "annotator": 404, "outsider": 404,
                                               "admin": 403}, label="draft"),
    Row("api-campaign-stats", "GET", campaign_of, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-campaign-exports", "GET", campaign_of, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-campaign-exports", "POST", campaign_of, {**ADMIN_ONLY_API, "admin": 202}, body=new_export,
        format="json"),
    Row("api-export", "GET", any_export, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-export-retry", "POST", failed_export, {**ADMIN_ONLY_API, "admin": 202}),
    # Exports hold every annotator's rankings: admins only.
    Row("api-export-file", "GET", published_file, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-item", "GET", free_item, {"anonymous": API_ANON, "annotator": 200, "outsider": 404, "admin": 200}),
    Row("api-item-judgments", "POST", free_item, {"anonymous": API_ANON, "annotator": 201, "outsider": 404,
                                                  "admin": 403}, body=api_ranks, format="json"),
    Row("api-item-skip", "POST", leased_item, {"anonymous": API_ANON, "annotator": 200, "outsider": 404,
                                               "admin": 403}, body=lambda world: {}, format="json"),
    Row("api-schema", "GET", expected=everyone(200)),
    Row("api-docs", "GET", expected=everyone(200)),
]


# --- quality: annotators' records, exclusions, disagreements, adjudication (reviewers: tests/annotation/
# test_views_review.py visits them as a reviewer who is not staff) --------------------------------------------------


def new_exclusion(world):
    return {"user": world.users["annotator"].id, "reason": "careless"}


MATRIX += [
    Row("admin:annotation_campaign_annotators", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("api-campaign-annotators", "GET", campaign_of, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-campaign-exclusions", "POST", campaign_of, {**ADMIN_ONLY_API, "admin": 201}, body=new_exclusion,
        format="json"),
    Row("annotation:disagreements", "GET", campaign_of, {"anonymous": LOGIN, "annotator": 403, "outsider": 403,
                                                         "admin": 200}),
    Row("annotation:adjudicate", "GET", judged_item, {"anonymous": LOGIN, "annotator": 403, "outsider": 403,
                                                      "admin": 200}),
    # An empty final ranking comes back with its errors (422); what matters is who reaches it.
    Row("annotation:adjudicate", "POST", judged_item, {"anonymous": LOGIN, "annotator": 403, "outsider": 403,
                                                       "admin": 422}, body=lambda world: {}),
]


# --- training: API, live run pages, admin views -----------------------------------------------------------------


def model_folder(name: str) -> Path:
    # Registration checks only for a saved model's config.json; nothing here loads the weights.
    folder = Path(settings.MEDIA_ROOT).parent / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def base_model_of(world) -> BaseModel:
    return BaseModel.objects.get_or_create(name="fake", defaults={"path": str(model_folder("fake"))})[0]


def training_run(world, **fields) -> TrainingRun:
    return TrainingRun.objects.create(kind="dpo", base_model=base_model_of(world), **fields)


def queued_run(world):
    return {"run_id": training_run(world).id}


def failed_run(world):
    return {"run_id": training_run(world, status=JobStatus.FAILED, error="worker died").id}


def new_base_model(world):
    return {"name": "another", "path": str(model_folder("another"))}


def new_training_run(world):
    export = export_run(export_id=export_of(world, test_fraction=0.0).id)
    assert export.status == JobStatus.SUCCEEDED, export.error
    return {"kind": "dpo", "base_model": base_model_of(world).id, "export": export.id}


def sft_upload(world):
    return {"file": SimpleUploadedFile("sft.jsonl", b'{"messages": [{"role": "user", "content": "Habari?"}]}\n')}


STAFF_PAGE = {"anonymous": LOGIN, "annotator": 403, "outsider": 403}

MATRIX += [
    Row("api-models", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-models", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_base_model, format="json"),
    Row("api-training-runs", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-training-runs", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_training_run,
        format="json"),
    Row("api-training-uploads", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=sft_upload,
        format="multipart"),
    Row("api-training-run", "GET", queued_run, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-training-run-cancel", "POST", queued_run, {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-training-run-retry", "POST", failed_run, {**ADMIN_ONLY_API, "admin": 202}),
    Row("training:runs", "GET", expected={**STAFF_PAGE, "admin": 200}),
    Row("training:run", "GET", queued_run, {**STAFF_PAGE, "admin": 200}),
    Row("training:run_status", "GET", queued_run, {**STAFF_PAGE, "admin": 200}),
    # A plain form post (no htmx) is sent back to the run's page.
    Row("training:run_cancel", "POST", queued_run, {**STAFF_PAGE, "admin": Redirect("training:runs")}),
    Row("training:run_retry", "POST", failed_run, {**STAFF_PAGE, "admin": Redirect("training:runs")}),
    Row("admin:training_trainingrun_new", "GET", expected={**ADMIN_ONLY_PAGE, "admin": 200}),
    # An empty form comes back with its errors (200).
    Row("admin:training_trainingrun_new", "POST", expected={**ADMIN_ONLY_PAGE, "admin": 200}, body=lambda world: {}),
]


# --- evaluation: result pages (everyone signed in reads), actions and downloads (staff), API ---------------------


def evaluation_model(name: str):
    from training.models import BaseModel as Model

    folder = Path(settings.MEDIA_ROOT).parent / "evaluation-models" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    return Model.objects.get_or_create(name=name, defaults={"path": str(folder)})[0]


def evaluation_run_with(world, *, model: str = "eval-a", **fields):
    from evaluation.models import EvaluationRun

    run = EvaluationRun.objects.create(base_model=evaluation_model(model), benchmarks=["xcopa"], **fields)
    outputs = Path(settings.MEDIA_ROOT) / "evaluation" / f"run-{run.pk}" / "outputs.jsonl"
    outputs.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_text('{"benchmark": "xcopa", "language": "sw", "id": "1", "input": "x", "prediction": 0}\n')
    run.outputs_path = str(outputs)
    run.save(update_fields=["outputs_path"])
    return run


def finished_evaluation(world):
    return {"run_id": evaluation_run_with(world, status=JobStatus.SUCCEEDED).id}


def failed_evaluation(world):
    return {"run_id": evaluation_run_with(world, status=JobStatus.FAILED, error="worker died").id}


def queued_evaluation(world):
    return {"run_id": evaluation_run_with(world).id}


def new_evaluation(world):
    return {"base_model": evaluation_model("eval-a").id, "benchmarks": ["xcopa"], "languages": ["sw"]}


def evaluation_pair(world):
    # Two runs without open-ended outputs: the service refuses, and staff are sent back to the comparison.
    return {"a": evaluation_run_with(world).id, "b": evaluation_run_with(world, model="eval-b").id,
            "name": "win rate", "overlap": 2}


def winrate_campaign(world):
    from annotation.services.imports import items_import

    a, b = evaluation_run_with(world), evaluation_run_with(world, model="eval-b")
    campaign = campaign_create(name="Win rate campaign", created_by=world.users["admin"])
    line = item_line("winrate-0", responses=["answer a", "answer b"])
    line["responses"][0]["model"], line["responses"][1]["model"] = "eval-a", "eval-b"
    line["metadata"] = {"winrate": {"run_a": a.id, "run_b": b.id}}
    items_import(campaign=campaign, source=[line])
    return {"campaign_id": campaign.id}


STAFF_ONLY = {"anonymous": LOGIN, "annotator": 403, "outsider": 403}

MATRIX += [
    Row("evaluation:runs", "GET", expected=signed_in(200)),
    Row("evaluation:run", "GET", finished_evaluation, signed_in(200)),
    Row("evaluation:run_status", "GET", finished_evaluation, signed_in(200)),
    Row("evaluation:results_csv", "GET", finished_evaluation, signed_in(200)),
    # Every prompt and answer verbatim: admins only, as the API's outputs download.
    Row("evaluation:outputs", "GET", finished_evaluation, {**STAFF_ONLY, "admin": 200}),
    Row("evaluation:compare", "GET", expected=signed_in(200)),
    # Names the data folders of the server: staff with access to the benchmark sources.
    Row("evaluation:coverage", "GET", expected={**STAFF_ONLY, "admin": 200}),
    Row("evaluation:retry", "POST", failed_evaluation, {**STAFF_ONLY, "admin": Redirect("evaluation:runs")}),
    Row("evaluation:cancel", "POST", queued_evaluation, {**STAFF_ONLY, "admin": Redirect("evaluation:runs")}),
    Row("evaluation:winrate_create", "POST", expected={**STAFF_ONLY, "admin": Redirect("evaluation:compare")},
        body=evaluation_pair),
    Row("evaluation:winrate", "GET", winrate_campaign, {**STAFF_ONLY, "admin": 200}),
    Row("api-benchmarks", "GET", expected=signed_in(200, anonymous=API_ANON)),
    Row("api-evaluation-runs", "GET", expected=signed_in(200, anonymous=API_ANON)),
    Row("api-evaluation-runs", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_evaluation,
        format="json"),
    Row("api-evaluation-run", "GET", finished_evaluation, signed_in(200, anonymous=API_ANON)),
    Row("api-evaluation-run-retry", "POST", failed_evaluation, {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-evaluation-run-cancel", "POST", queued_evaluation, {**ADMIN_ONLY_API, "admin": 202}),
    # Outputs hold every prompt and answer verbatim: admins only.
    Row("api-evaluation-run-outputs", "GET", finished_evaluation, {**ADMIN_ONLY_API, "admin": 200}),
]

# --- people (issue 15): invitations, own API token, password reset, activity ping, workload, time and pay ----------


def bad_link(world):
    # A link that checks out for nobody: the page that says so, for everyone (signed in or not).
    return {"uidb64": "MQ", "token": "1-0123456789abcdef"}


def team_csv(world):
    return {"text": "username,email,native_languages,reading_languages\nnewcomer,newcomer@example.org,ta,sw\n"}


MATRIX += [
    Row("invitation", "GET", bad_link, everyone(200)),
    Row("invitation", "POST", bad_link, everyone(200), label="a bad link sets no password"),
    Row("api_token", "GET", expected=signed_in(200)),
    Row("api_token", "POST", expected=signed_in(200)),
    Row("password_reset", "GET", expected=everyone(200)),
    Row("password_reset", "POST", expected=everyone(Redirect("password_reset_done")),
        body=lambda world: {"email": "nobody@example.org"}),
    Row("password_reset_done", "GET", expected=everyone(200)),
    Row("password_reset_confirm", "GET", bad_link, everyone(200)),
    Row("password_reset_complete", "GET", expected=everyone(200)),
    # Only annotators' activity counts; the admin has no annotator profile.
    Row("annotation:activity", "POST", campaign_of, signed_in(204, admin=403)),
    Row("annotation:activity", "POST", draft_of, signed_in(404, admin=403), label="draft"),
    Row("annotation:activity", "GET", campaign_of, everyone(405), label="no state change by GET"),
    Row("admin:annotation_annotatorprofile_invite", "GET", expected={**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("admin:annotation_annotatorprofile_invite", "POST", expected={**ADMIN_ONLY_PAGE, "admin": 200},
        body=team_csv),
    Row("admin:annotation_campaign_workload", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("admin:annotation_campaign_time_report", "GET", campaign_of, {**ADMIN_ONLY_PAGE, "admin": 200}),
    Row("api-campaign-time-report", "GET", campaign_of, {**ADMIN_ONLY_API, "admin": 200}),
]


# --- rounds (issue 13): the generation pages, Next round, the lineage (page and API) -------------------------------


def generation_job(world, **fields):
    from generation.models import GenerationJob

    return {"job_id": GenerationJob.objects.create(campaign_name="Round", **fields).id}


def failed_generation_job(world):
    return generation_job(world, status=JobStatus.FAILED, error="worker died")


def succeeded_run_with_version(world):
    """A DPO run on the world's campaign that succeeded and registered a version (an adapter folder with its
    config: all that creating the next round's job checks)."""
    from training.models import ModelVersion

    run = training_run(world, status=JobStatus.SUCCEEDED, export=export_of(world, status=JobStatus.SUCCEEDED))
    adapter = model_folder(f"adapter-{run.id}")
    (adapter / "adapter_config.json").write_text("{}")
    ModelVersion.objects.create(name=f"fake-dpo-{run.id}", base_model=run.base_model, run=run, kind="dpo",
                                adapter_path=str(adapter))
    return {"run_id": run.id}


MATRIX += [
    Row("generation:jobs", "GET", expected={**STAFF_PAGE, "admin": 200}),
    Row("generation:job_new", "GET", expected={**STAFF_PAGE, "admin": 200}),
    # An empty form comes back with its errors (400).
    Row("generation:job_new", "POST", expected={**STAFF_PAGE, "admin": 400}, body=lambda world: {}),
    Row("generation:job", "GET", generation_job, {**STAFF_PAGE, "admin": 200}),
    Row("generation:job_status", "GET", generation_job, {**STAFF_PAGE, "admin": 200}),
    Row("generation:job_cancel", "POST", generation_job, {**STAFF_PAGE, "admin": Redirect("generation:jobs")}),
    Row("generation:job_retry", "POST", failed_generation_job, {**STAFF_PAGE, "admin": Redirect("generation:jobs")}),
    Row("generation:next_round", "GET", succeeded_run_with_version, {**STAFF_PAGE, "admin": 200}),
    Row("generation:next_round", "POST", succeeded_run_with_version,
        {**STAFF_PAGE, "admin": Redirect("generation:jobs")},
        body=lambda world: {"samples_per_generator": "1", "off_target": "keep", "languages_per_prompt": "1"}),
    Row("generation:lineage", "GET", campaign_of, {**STAFF_PAGE, "admin": 200}),
    Row("api-training-run-next-round", "POST", succeeded_run_with_version, {**ADMIN_ONLY_API, "admin": 201},
        body=lambda world: {"languages_per_prompt": 1}, format="json"),
    Row("api-campaign-lineage", "GET", campaign_of, {**ADMIN_ONLY_API, "admin": 200}),
]


# --- generation jobs and endpoints (issue 13): the API --------------------------------------------------------------


def new_generation_job(world):
    return {"generators": [{"base_model": base_model_of(world).id}],
            "prompts": {"items": [{"external_id": "g1", "text": "Habari?", "language": "sw"}]},
            "response_languages": ["ta"], "campaign": {"name": "Generated"}}


MATRIX += [
    Row("api-generation-jobs", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-generation-jobs", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=new_generation_job,
        format="json"),
    Row("api-generation-job", "GET", generation_job, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-generation-job-cancel", "POST", generation_job, {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-generation-job-retry", "POST", failed_generation_job, {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-endpoints", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    # No host is allowed here (CROSSFEED_GENERATION_ALLOWED_HOSTS is empty): refused with the reason; what matters is
    # who gets that far.
    Row("api-endpoints", "POST", expected={**ADMIN_ONLY_API, "admin": 400},
        body=lambda world: {"name": "e", "base_url": "http://127.0.0.1:8001/v1", "model": "m"}, format="json"),
]


# --- instruction sets -------------------------------------------------------------------------------------------


def instruction_set_upload(world):
    return {"file": SimpleUploadedFile("set.jsonl", b'{"instruction": "Say hi.", "output": "Hi!"}\n')}


def instruction_set(world):
    from instructions.services.sets import instruction_set_import

    stored = instruction_set_import(name="Authorization set", source=instruction_set_upload(world)["file"])
    return {"set_id": stored.id}


MATRIX += [
    Row("api-instruction-sets", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-instruction-sets", "POST", expected={**ADMIN_ONLY_API, "admin": 201}, body=instruction_set_upload,
        format="multipart"),
    Row("api-instruction-set", "GET", instruction_set, {**ADMIN_ONLY_API, "admin": 200}),
]


# --- instruction set SFT exports (issue 14) -----------------------------------------------------------------------


def translated_instruction_set(world):
    """A set with a succeeded translation job and one chosen translation: something to export."""
    from instructions.models import InstructionSet
    from translation.models import Translation, TranslationJob

    stored = InstructionSet.objects.get(pk=instruction_set(world)["set_id"])
    job = TranslationJob.objects.create(instruction_set=stored, languages=["sw"], status=JobStatus.SUCCEEDED)
    Translation.objects.create(job=job, row=stored.instruction_rows.get(), language_id="sw", chosen=True,
                               fields={"instruction": "Sema salamu.", "input": "", "output": "Habari!"})
    return {"set_id": stored.id}


def instruction_export(world, *, published: bool = False, **fields):
    from instructions.models import InstructionExport
    from instructions.services.exports import instruction_export_create, instruction_export_run

    export = instruction_export_create(instruction_set=translated_instruction_set(world)["set_id"], enqueue=False)
    if published:
        instruction_export_run(export_id=export.id)
    InstructionExport.objects.filter(pk=export.pk).update(**fields)
    return {"export_id": export.id}


MATRIX += [
    Row("api-instruction-set-exports", "GET", translated_instruction_set, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-instruction-set-exports", "POST", translated_instruction_set, {**ADMIN_ONLY_API, "admin": 202},
        body=lambda world: {}, format="json"),
    Row("api-instruction-export", "GET", instruction_export, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-instruction-export-retry", "POST", lambda world: instruction_export(world, status=JobStatus.FAILED),
        {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-instruction-export-file", "GET",
        lambda world: {**instruction_export(world, published=True), "name": "sft-all.jsonl"},
        {**ADMIN_ONLY_API, "admin": 200}),
]


# --- instruction translation (issue 14): translators and translation jobs ------------------------------------------


def new_translation_job(world):
    from translation.models import Translator
    from translation.services.translators import PROMPT_TEMPLATE

    translator = Translator.objects.create(name="Authorization translator", kind="llm",
                                           base_model=base_model_of(world), prompt_template=PROMPT_TEMPLATE)
    return {"languages": ["sw"], "translators": [translator.id]}


def translation_job(world, **fields):
    from instructions.models import InstructionSet
    from translation.models import TranslationJob

    stored = InstructionSet.objects.get(pk=instruction_set(world)["set_id"])
    return {"job_id": TranslationJob.objects.create(instruction_set=stored, languages=["sw"], **fields).id}


MATRIX += [
    Row("api-translators", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-translators", "POST", expected={**ADMIN_ONLY_API, "admin": 400},
        body=lambda world: {"name": "t", "kind": "rule-based"}, format="json"),
    Row("api-set-translations", "POST", instruction_set, {**ADMIN_ONLY_API, "admin": 201}, body=new_translation_job,
        format="json"),
    Row("api-translation-jobs", "GET", expected={**ADMIN_ONLY_API, "admin": 200}),
    Row("api-translation-job", "GET", translation_job, {**ADMIN_ONLY_API, "admin": 200}),
    Row("api-translation-job-cancel", "POST", translation_job, {**ADMIN_ONLY_API, "admin": 202}),
    Row("api-translation-job-retry", "POST", lambda world: translation_job(world, status=JobStatus.FAILED),
        {**ADMIN_ONLY_API, "admin": 202}),
]


# --- the translation pages (issue 14) ------------------------------------------------------------------------------

MATRIX += [
    Row("translation:jobs", "GET", expected={**STAFF_PAGE, "admin": 200}),
    Row("translation:job_new", "GET", expected={**STAFF_PAGE, "admin": 200}),
    # An empty form comes back with its errors (400).
    Row("translation:job_new", "POST", expected={**STAFF_PAGE, "admin": 400}, body=lambda world: {}),
    Row("translation:job", "GET", translation_job, {**STAFF_PAGE, "admin": 200}),
    Row("translation:job_status", "GET", translation_job, {**STAFF_PAGE, "admin": 200}),
    Row("translation:job_exports", "GET", translation_job, {**STAFF_PAGE, "admin": 200}),
    Row("translation:job_cancel", "POST", translation_job, {**STAFF_PAGE, "admin": Redirect("translation:jobs")}),
    Row("translation:job_retry", "POST", lambda world: translation_job(world, status=JobStatus.FAILED),
        {**STAFF_PAGE, "admin": Redirect("translation:jobs")}),
    # A queued job: the empty post-editing form, and the export the service refuses, come back with their errors.
    Row("translation:job_post_edit", "POST", translation_job, {**STAFF_PAGE, "admin": 400}, body=lambda world: {}),
    Row("translation:job_export", "POST", translation_job, {**STAFF_PAGE, "admin": 400}, body=lambda world: {}),
]


def _row_id(row: Row) -> str:
    return f"{row.method} {row.name}" + (f" ({row.label})" if row.label else "")


CASES = [pytest.param(row, role, id=f"{_row_id(row)} as {role}") for row in MATRIX for role in ROLES]


@pytest.mark.parametrize("row, role", CASES)
def test_it_answers_each_role_as_the_matrix_says(world, row: Row, role: str):
    assert set(row.expected) == set(ROLES), f"{_row_id(row)}: give an expectation for every role"
    client = client_as(world, role)
    url = reverse(row.name, kwargs=row.kwargs(world))
    body = row.body(world) if row.body else None
    if row.method == "GET":
        response = client.get(url)
    elif row.format is None:
        response = client.generic("POST", url) if body is None else client.post(url, body)
    else:
        response = client.post(url, body, format=row.format)
    expected = row.expected[role]
    if isinstance(expected, Redirect):
        expected.check(response)
    else:
        assert response.status_code == expected, (url, role, response.content[:500])


# --- the matrix covers the URLconf ------------------------------------------------------------------------------


def _url_patterns(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    """(name qualified by its namespace or None, the full route) of every pattern, recursively."""
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part)
            yield from _url_patterns(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield name, route


def _is_admin_internal(name: str | None, route: str) -> bool:
    if not route.startswith("admin/"):
        return False
    if name is None:
        return route.endswith(UNNAMED_ADMIN_ROUTES)
    return name in ADMIN_SITE_INTERNALS or name.endswith(MODEL_ADMIN_ROUTE_SUFFIXES)


def test_it_has_a_matrix_row_for_every_url_pattern():
    patterns = list(_url_patterns(get_resolver()))
    unnamed = [route for name, route in patterns if name is None and not _is_admin_internal(name, route)]
    assert not unnamed, f"give these URL patterns a name so the authorization matrix can cover them: {unnamed}"
    ours = {name for name, route in patterns if not _is_admin_internal(name, route)}
    covered = {row.name for row in MATRIX}
    assert ours - covered == set(), "URL patterns without an authorization matrix row"
    assert covered - ours == set(), "matrix rows for URL patterns that no longer exist"


def test_it_knows_the_admin_internals_it_leaves_out():
    # Guards the exclusion lists themselves: a typo there would silently leave out nothing, or something of ours.
    names = {name for name, _route in _url_patterns(get_resolver())}
    assert names >= ADMIN_SITE_INTERNALS
    assert "admin:annotation_campaign_changelist" in names
    ours = "admin/annotation/campaign/<int:campaign_id>/import/"
    assert not _is_admin_internal("admin:annotation_campaign_import", ours)


# --- the Django admin -------------------------------------------------------------------------------------------


def _admin_pages() -> list[str]:
    pages = ["admin:index"]
    for model in admin.site._registry:
        pages.append(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return pages


@pytest.mark.parametrize("role", ["anonymous", "annotator", "outsider"])
def test_it_sends_non_staff_to_the_admin_login(world, role):
    client = client_as(world, role)
    for page in _admin_pages():
        response = client.get(reverse(page))
        ADMIN_LOGIN.check(response)
        assert "next=" in response["Location"]


def test_it_opens_every_admin_list_to_the_admin(world):
    client = client_as(world, "admin")
    for page in _admin_pages():
        assert client.get(reverse(page)).status_code == 200, page


def test_it_lets_no_annotator_change_anything_through_the_admin(world):
    client = client_as(world, "annotator")
    url = reverse("admin:annotation_campaign_change", args=[world.campaign.id])
    response = client.post(url, {"name": "Taken over", "overlap": 1, "lease_minutes": 1, "status": "closed"})
    ADMIN_LOGIN.check(response)
    world.campaign.refresh_from_db()
    assert world.campaign.name == "Test campaign"


# --- no state change by GET, and none without CSRF --------------------------------------------------------------


def test_it_changes_nothing_on_get_of_a_state_changing_page(world):
    client = client_as(world, "annotator")
    for name, kwargs in [("annotation:next", campaign_of(world)), ("annotation:submit", free_item(world)),
                         ("annotation:skip", leased_item(world))]:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 405, name
    assert Lease.objects.count() == 1
    assert Judgment.objects.count() == 1
    assert Skip.objects.count() == 0


def test_it_requires_csrf_for_the_api_with_a_session(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.users["annotator"])
    url = reverse("api-item-judgments", kwargs=free_item(world))
    response = client.post(url, api_ranks(world), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Judgment.objects.count() == 1
