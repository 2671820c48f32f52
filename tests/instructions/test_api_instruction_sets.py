"""POST/GET /api/v1/instruction-sets/: admins import a file (201 with its id and rows); a bad line is a 400 naming it,
and nothing is stored; annotators are refused (403), anonymous callers asked to sign in (401)."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from instructions.models import InstructionRow, InstructionSet

URL = "/api/v1/instruction-sets/"
pytestmark = pytest.mark.django_db


def upload(rows: list, name: str = "tiny.jsonl") -> SimpleUploadedFile:
    body = "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n"
    return SimpleUploadedFile(name, body.encode("utf-8"), content_type="application/octet-stream")


ROWS = [{"instruction": "Add.", "input": "2 + 3", "output": "5"}, {"instruction": "Name a colour.", "output": "Red."}]


def test_it_imports_a_file_and_answers_201_with_id_and_rows(api, admin_user):
    response = api(admin_user).post(URL, {"file": upload(ROWS), "language": "de", "notes": "hand-made"},
                                    format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    stored = InstructionSet.objects.get()
    assert (body["id"], body["rows"], body["name"], body["format"]) == (stored.id, 2, "tiny.jsonl", "alpaca")
    assert (body["language"], body["sha256"], body["status"], body["notes"]) == ("de", stored.sha256, "ready",
                                                                                  "hand-made")
    assert api(admin_user).get(f"{URL}{stored.id}/").json() == body
    assert [entry["id"] for entry in api(admin_user).get(URL).json()] == [stored.id]


def test_it_takes_a_json_array_and_a_name(api, admin_user):
    array = SimpleUploadedFile("alpaca_data.json", json.dumps(ROWS, indent=2).encode())
    response = api(admin_user).post(URL, {"file": array, "name": "Alpaca, 2 rows"}, format="multipart")
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["rows"]) == ("Alpaca, 2 rows", 2)


def test_it_answers_400_by_line_and_stores_nothing(api, admin_user):
    rows = [*ROWS, {"instruction": "x", "ouput": "typo"}, "{broken"]
    response = api(admin_user).post(URL, {"file": upload(rows)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert [(error["line"], error["field"]) for error in body["errors"]] == [(3, "ouput"), (3, "output"), (4, "")]
    assert (body["error_count"], body["truncated"]) == (3, False)
    assert not InstructionSet.objects.exists() and not InstructionRow.objects.exists()


def test_it_answers_400_for_a_missing_file_an_empty_file_and_an_unknown_language(api, admin_user):
    client = api(admin_user)
    assert client.post(URL, {"name": "x"}, format="multipart").json() == {
        "file": ["upload the instruction set in a form field named 'file'"]}
    empty = client.post(URL, {"file": SimpleUploadedFile("empty.jsonl", b"")}, format="multipart")
    assert empty.status_code == 400 and empty.json()["errors"][0]["message"] == "empty file: no records"
    unknown = client.post(URL, {"file": upload(ROWS), "language": "klingon"}, format="multipart")
    assert unknown.status_code == 400 and "language" in unknown.json()
    assert not InstructionSet.objects.exists()


def test_it_refuses_a_name_in_use(api, admin_user):
    client = api(admin_user)
    assert client.post(URL, {"file": upload(ROWS), "name": "Mine"}, format="multipart").status_code == 201
    again = client.post(URL, {"file": upload(ROWS), "name": "Mine"}, format="multipart")
    assert again.status_code == 400
    assert "exists already" in again.json()["name"][0]
    assert InstructionSet.objects.count() == 1


def test_it_refuses_annotators_and_anonymous_callers(api, annotator):
    assert api(annotator).post(URL, {"file": upload(ROWS)}, format="multipart").status_code == 403
    assert api(annotator).get(URL).status_code == 403
    assert api().post(URL, {"file": upload(ROWS)}, format="multipart").status_code == 401
    assert api().get(URL).status_code == 401
    assert not InstructionSet.objects.exists()


def test_it_hides_a_set_still_being_imported(api, admin_user):
    importing = InstructionSet.objects.create(name="Half", format="alpaca", language_id="en", sha256="0" * 64)
    assert api(admin_user).get(URL).json() == []
    assert api(admin_user).get(f"{URL}{importing.id}/").status_code == 404


def test_it_documents_the_endpoint_in_the_schema(api, admin_user):
    schema = api(admin_user).get("/api/schema/?format=json").json()
    post = schema["paths"]["/api/v1/instruction-sets/"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "400"} <= set(post["responses"])
    assert "/api/v1/instruction-sets/{set_id}/" in schema["paths"]
