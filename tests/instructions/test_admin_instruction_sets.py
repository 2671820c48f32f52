"""The admin's instruction sets: imported from the "add" page without leaving the browser, then read-only."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from instructions.models import InstructionRow, InstructionSet

pytestmark = pytest.mark.django_db
ADD = "admin:instructions_instructionset_add"


def upload(lines: list[str], name: str = "set.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode("utf-8"))


GOOD = [json.dumps({"instruction": "Say hi.", "output": "Hi!"}), json.dumps({"instruction": "Add.", "input": "1+1",
                                                                          "output": "2"})]


def test_it_imports_a_set_from_the_add_page(client, admin_user):
    client.force_login(admin_user)
    assert b'enctype="multipart/form-data"' in client.get(reverse(ADD)).content
    response = client.post(reverse(ADD), {"file": upload(GOOD), "name": "", "language": "fr", "notes": ""})
    stored = InstructionSet.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:instructions_instructionset_change", args=[stored.pk])
    assert (stored.name, stored.rows, stored.language_id, stored.created_by) == ("set.jsonl", 2, "fr", admin_user)
    listing = client.get(reverse("admin:instructions_instructionset_changelist")).content.decode()
    assert "set.jsonl" in listing and "Show the rows" in listing
    rows = client.get(reverse("admin:instructions_instructionrow_changelist"),
                      {"instruction_set__id__exact": stored.pk})
    assert rows.status_code == 200 and "Say hi." in rows.content.decode()
    assert client.get(reverse("admin:instructions_instructionset_change", args=[stored.pk])).status_code == 200


def test_it_lists_the_problems_by_line_and_stores_nothing(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse(ADD), {"file": upload([GOOD[0], '{"instruction": "x"}']), "language": "en"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<td>2</td><td><code>output</code></td><td>required</td>" in page
    assert not InstructionSet.objects.exists()


def test_it_puts_a_name_in_use_on_the_name_field(client, admin_user):
    client.force_login(admin_user)
    client.post(reverse(ADD), {"file": upload(GOOD), "name": "Mine", "language": "en"})
    response = client.post(reverse(ADD), {"file": upload(GOOD), "name": "Mine", "language": "en"})
    assert "exists already" in response.context["form"].errors["name"][0]
    assert InstructionSet.objects.count() == 1


def test_it_refuses_the_import_page_to_an_annotator(client, annotator):
    client.force_login(annotator)
    response = client.post(reverse(ADD), {"file": upload(GOOD), "language": "en"})
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert not InstructionSet.objects.exists()


def test_it_deletes_a_set_with_its_rows_counted_not_listed(client, admin_user):
    client.force_login(admin_user)
    client.post(reverse(ADD), {"file": upload(GOOD), "name": "Doomed", "language": "en"})
    stored = InstructionSet.objects.get()
    url = reverse("admin:instructions_instructionset_delete", args=[stored.pk])
    confirm = client.get(url).content.decode()
    assert "Say hi." not in confirm  # the rows are counted, not listed one by one
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not InstructionSet.objects.exists() and not InstructionRow.objects.exists()
