"""The SFT export through HTTP: POST instruction-sets/{id}/exports/ answers 202 and queues the export on "exports",
which the real worker runs; GET instruction-set-exports/{id}/ reports it, its files download with the hashes it
gives; retry; 400 by field with nothing stored; staff only (annotators 403, anonymous 401)."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from instructions.models import InstructionExport
from instructions.services.exports import instruction_export_create, instruction_export_run
from tests.instructions.test_sft_export import media, translated_set  # noqa: F401 - media: the autouse fixture
from tests.test_hostile import quiet_fuzzing, wsgi_in_test_transaction  # noqa: F401 - fixtures shared

pytestmark = pytest.mark.django_db


def exports_url(set_id: int) -> str:
    return reverse("api-instruction-set-exports", args=[set_id])


def detail_url(export_id: int) -> str:
    return reverse("api-instruction-export", args=[export_id])


def download(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


@pytest.mark.django_db(transaction=True)
def test_it_answers_202_queues_on_exports_and_the_worker_publishes_files_to_download(api, admin_user):
    instruction_set, job = translated_set()
    client = api(admin_user)
    response = client.post(exports_url(instruction_set.id), {"languages": ["sw", "zh-Hans"]}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["instruction_set"], body["translation_job"]) == ("queued", instruction_set.id,
                                                                                   job.id)
    assert (body["languages"], body["include_source"], body["files"]) == (["sw", "zh-Hans"], True, [])
    assert body["progress"] == {"done": 0, "total": 8}
    task = DBTaskResult.objects.get()
    assert (task.queue_name, task.args_kwargs["args"]) == ("exports", [body["id"]])
    # The real worker, once: it claims the task and runs the export.
    call_command("db_worker", "--batch", "--queue-name", "exports", stdout=io.StringIO(), stderr=io.StringIO())

    detail = client.get(detail_url(body["id"])).json()
    assert detail["status"] == "succeeded", detail["error"]
    assert detail["rows"] == 8 and detail["progress"] == {"done": 8, "total": 8}
    assert detail["per_language"]["sw"]["left_out"] == {"not_acceptable": 1, "unusable": 0}
    names = [entry["name"] for entry in detail["files"]]
    assert names == ["sft-all.jsonl", "sft-en.jsonl", "sft-sw.jsonl", "sft-zh-Hans.jsonl", "README.md"]
    for entry in detail["files"]:
        content = download(client, entry["url"])
        assert (hashlib.sha256(content).hexdigest(), len(content)) == (entry["sha256"], entry["bytes"])
    card = download(client, detail["files"][-1]["url"]).decode()
    assert detail["files"][0]["sha256"] in card
    listed = client.get(exports_url(instruction_set.id)).json()
    assert [export["id"] for export in listed] == [body["id"]]


def test_unknown_and_unpublished_files_are_404(api, admin_user):
    instruction_set, _job = translated_set()
    client = api(admin_user)
    export = instruction_export_create(instruction_set=instruction_set, enqueue=False)
    file_url = reverse("api-instruction-export-file", args=[export.id, "sft-all.jsonl"])
    assert client.get(file_url).status_code == 404  # queued: nothing is published yet
    instruction_export_run(export_id=export.id)
    assert client.get(file_url).status_code == 200
    for name in ("sft-de.jsonl", "..%2F..%2Fsettings.py", ".%2E", "outputs.jsonl"):
        assert client.get(f"/api/v1/instruction-set-exports/{export.id}/files/{name}").status_code == 404, name
    assert client.get(detail_url(10**6)).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"languages": ["xx-nope"]}, "languages"),
    ({"languages": ["de"]}, "languages"),
    ({"languages": "sw"}, "languages"),
    ({"translation_job": 999999}, "translation_job"),
    ({"translation_job": "seven"}, "translation_job"),
    ({"include_source": "perhaps"}, "include_source"),
    ({"langauges": ["sw"]}, "langauges"),  # a misspelt field is not ignored
])
def test_bad_bodies_answer_400_naming_the_field_and_store_nothing(api, admin_user, body, field):
    instruction_set, _job = translated_set()
    response = api(admin_user).post(exports_url(instruction_set.id), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not InstructionExport.objects.exists()


def test_an_unknown_or_unready_set_is_404(api, admin_user):
    assert api(admin_user).post(exports_url(10**6), {}, format="json").status_code == 404


def test_retry_queues_a_failed_export_and_refuses_a_succeeded_one(api, admin_user):
    instruction_set, _job = translated_set()
    client = api(admin_user)
    export = instruction_export_create(instruction_set=instruction_set, enqueue=False)
    InstructionExport.objects.filter(pk=export.pk).update(status="failed", error="the worker was stopped")
    retry_url = reverse("api-instruction-export-retry", args=[export.id])
    response = client.post(retry_url)
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert response.json()["error"] == ""
    instruction_export_run(export_id=export.id)
    assert client.post(retry_url).status_code == 409


def test_annotators_are_refused_and_anonymous_callers_asked_to_sign_in(api, admin_user, annotator):
    instruction_set, _job = translated_set()
    export = instruction_export_run(
        export_id=instruction_export_create(instruction_set=instruction_set, enqueue=False).id)
    urls = [("post", exports_url(instruction_set.id)), ("get", exports_url(instruction_set.id)),
            ("get", detail_url(export.id)), ("post", reverse("api-instruction-export-retry", args=[export.id])),
            ("get", reverse("api-instruction-export-file", args=[export.id, "sft-all.jsonl"]))]
    for method, url in urls:
        assert getattr(api(annotator), method)(url, format="json").status_code == 403, url
        assert getattr(api(), method)(url, format="json").status_code == 401, url
    assert InstructionExport.objects.count() == 1


def test_its_endpoints_answer_fuzzed_requests_as_the_schema_says(api, admin_user, quiet_fuzzing,  # noqa: F811
                                                                  wsgi_in_test_transaction):  # noqa: F811
    """tests/test_hostile.py's fuzzing, on these endpoints with a real set and a published export (its world has
    neither): no server error, every answer as the OpenAPI schema describes it."""
    import schemathesis

    from crossfeed.tokens.services import token_issue
    from tests.test_hostile import EXAMPLES_PER_OPERATION, fuzz

    instruction_set, _job = translated_set()
    export = instruction_export_run(
        export_id=instruction_export_create(instruction_set=instruction_set, enqueue=False).id)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction)
    operations = [result.ok() for result in schema.get_all_operations()]
    mine = [operation for operation in operations if "instruction-set-exports" in operation.path
            or operation.path.endswith("/exports/") and "instruction-sets" in operation.path]
    assert len(mine) == 5, [operation.label for operation in mine]
    ids = {"set_id": instruction_set.id, "export_id": export.id, "name": "sft-all.jsonl"}
    headers = {"Authorization": f"Token {token_issue(user=admin_user)}"}
    failures = []
    for operation in mine:
        try:
            fuzz(operation, headers, ids, EXAMPLES_PER_OPERATION)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
