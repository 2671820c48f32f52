"""No 500 from any input (issue 11, point 7): lone surrogates, non-ASCII digits, oversized numbers and deep nesting
get a 400 (or the page's form error) naming the field; the admin pages that such data reached work.

A lone UTF-16 surrogate ("\\ud800" as a JSON escape) decodes to a Python string that UTF-8 cannot encode: SQLite,
psycopg and the JSON renderer all raise on it, so it has to be refused where it comes in.
"""

from __future__ import annotations

import io
import json

import pytest
from django.urls import reverse

from annotation.models import Campaign, Item, Judgment
from annotation.services.assignment import lease_next
from evaluation.models import EvaluationRun
from tests.conftest import item_line, new_key, ranks_for
from training.models import BaseModel

SURROGATE = "\\ud800"  # the six characters of the JSON escape, as a client sends them
HTMX = {"HTTP_HX_REQUEST": "true"}


def raw_json(value: dict | list, *, text: str) -> bytes:
    """The JSON of `value` with every "@@" replaced by `text` (so that an escape reaches the server unchanged)."""
    return json.dumps(value).replace("@@", text).encode()


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


@pytest.fixture
def leased(annotator, items):
    lease = lease_next(campaign=items[0].campaign, annotator=annotator)
    return Item.objects.get(pk=lease.item_id)


# --- lone surrogates through the API ---------------------------------------------------------------------------


def judgment_body(item, **extra) -> dict:
    return {"ranks": ranks_for(item), "idempotency_key": new_key(), **extra}


@pytest.mark.parametrize("extra, field", [
    ({"comment": "fine @@ comment"}, "comment"),
    ({"flags": "FLAGS"}, "flags"),
    ({"idempotency_key": "key-@@"}, "idempotency_key"),
])
def test_a_lone_surrogate_in_a_judgment_is_a_400_naming_the_field(api, annotator, leased, extra, field):
    response_id = str(leased.responses.first().id)
    if extra.get("flags") == "FLAGS":
        extra = {"flags": {response_id: ["@@"]}}
    body = raw_json(judgment_body(leased, **extra), text=SURROGATE)

    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/", data=body,
                                   content_type="application/json")

    assert response.status_code == 400, response.content[:300]
    assert field in response.json(), response.json()
    assert "Surrogate characters are not allowed: U+D800." in str(response.json()[field])
    assert not Judgment.objects.exists()


def test_a_lone_surrogate_in_a_rank_key_is_a_400(api, annotator, leased):
    body = raw_json({"ranks": {"@@": 1}, "idempotency_key": new_key()}, text=SURROGATE)
    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/", data=body,
                                   content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "ranks" in response.json()


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/campaigns/", {"name": "Campaign @@"}, "name"),
    ("/api/v1/campaigns/", {"name": "ok", "guidelines": "Rules @@"}, "guidelines"),
    ("/api/v1/campaigns/", {"name": "ok", "flag_vocabulary": ["@@"]}, "flag_vocabulary"),
    ("/api/v1/annotators/", {"username": "u@@", "password": "pw-long-enough-1", "native_languages": ["ta"]},
     "username"),
])
def test_a_lone_surrogate_in_an_admin_body_is_a_400_naming_the_field(admin_api, path, body, field):
    response = admin_api.post(path, data=raw_json(body, text=SURROGATE), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json(), response.json()
    assert not Campaign.objects.filter(name__startswith="Campaign").exists()


def test_a_lone_surrogate_in_a_skip_reason_is_a_400(api, annotator, leased):
    response = api(annotator).post(f"/api/v1/items/{leased.id}/skip/", data=raw_json({"reason": "@@"},
                                   text=SURROGATE), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "reason" in response.json()


def test_a_lone_surrogate_in_a_utf16_body_is_a_400(api, annotator, leased):
    body = raw_json(judgment_body(leased, comment="@@"), text=SURROGATE).decode().encode("utf-16")
    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/", data=body,
                                   content_type="application/json; charset=utf-16")
    assert response.status_code == 400, response.content[:300]
    assert "comment" in response.json()


def test_an_escaped_backslash_before_ud800_is_plain_text(api, annotator, leased):
    body = raw_json(judgment_body(leased, comment="path C:@@"), text="\\\\ud800")
    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/", data=body,
                                   content_type="application/json")
    assert response.status_code == 201, response.content
    assert Judgment.objects.get().comment == "path C:\\ud800"


def test_a_surrogate_pair_is_a_character_and_is_kept(api, annotator, leased):
    body = raw_json(judgment_body(leased, comment="smile @@"), text="\\ud83d\\ude00")
    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/", data=body,
                                   content_type="application/json")
    assert response.status_code == 201, response.content
    assert Judgment.objects.get().comment == "smile \N{GRINNING FACE}"


# --- lone surrogates in imported items ---------------------------------------------------------------------------


def import_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.id}/items/"


def surrogate_lines() -> bytes:
    """Line 1 is fine; line 2 has a lone surrogate in its second response."""
    good = json.dumps(item_line("good"))
    bad = item_line("bad", responses=["first", "second @@", "third"])
    return (good + "\n" + json.dumps(bad).replace("@@", SURROGATE) + "\n").encode()


def assert_surrogate_refused_at_line_2(response, campaign) -> None:
    assert response.status_code == 400, response.content[:300]
    errors = response.json()["errors"]
    assert [(error["line"], error["field"]) for error in errors] == [(2, "responses[1].text")], errors
    assert errors[0]["message"] == "Surrogate characters are not allowed: U+D800."
    assert not campaign.items.exists()


def test_a_lone_surrogate_in_an_imported_jsonl_body_names_line_and_field(admin_api, campaign):
    response = admin_api.post(import_url(campaign), data=surrogate_lines(), content_type="application/x-ndjson")
    assert_surrogate_refused_at_line_2(response, campaign)


def test_a_lone_surrogate_in_an_imported_json_array_names_line_and_field(admin_api, campaign):
    body = b"[" + b",".join(surrogate_lines().splitlines()) + b"]"
    response = admin_api.post(import_url(campaign), data=body, content_type="application/json")
    assert_surrogate_refused_at_line_2(response, campaign)


def test_a_lone_surrogate_in_an_imported_file_names_line_and_field(admin_api, campaign):
    upload = io.BytesIO(surrogate_lines())
    upload.name = "items.jsonl"
    response = admin_api.post(import_url(campaign), data={"file": upload}, format="multipart")
    assert_surrogate_refused_at_line_2(response, campaign)


@pytest.mark.parametrize("where", ["prompt", "pivot", "model", "metadata"])
def test_a_lone_surrogate_anywhere_in_an_item_is_refused(admin_api, campaign, where):
    line = item_line("x")
    if where in ("prompt", "pivot"):
        line[where]["text"] = "@@"
    elif where == "model":
        line["responses"][0]["model"] = "m@@"
    else:
        line["metadata"] = {"source": {"note": "@@"}}
    body = json.dumps(line).replace("@@", SURROGATE).encode() + b"\n"
    response = admin_api.post(import_url(campaign), data=body, content_type="application/x-ndjson")
    assert response.status_code == 400, response.content[:300]
    [error] = response.json()["errors"]
    assert error["line"] == 1 and error["field"].startswith(where if where != "model" else "responses[0]")
    assert not campaign.items.exists()


@pytest.mark.parametrize("line, field", [
    ('{"external_id": "k", "@@": 1}', "\\ud800"),
    ('{"responses": [{"text": "a", "language": "ta", "@@": 1}]}', "responses[0].\\ud800"),
])
def test_an_unknown_key_with_a_lone_surrogate_is_named_escaped(admin_api, campaign, line, field):
    body = line.replace("@@", SURROGATE).encode() + b"\n"
    response = admin_api.post(import_url(campaign), data=body, content_type="application/x-ndjson")
    assert response.status_code == 400, response.content[:300]
    assert field in [error["field"] for error in response.json()["errors"]], response.json()


def test_deep_nesting_in_an_imported_file_names_the_line(admin_api, campaign):
    upload = io.BytesIO(json.dumps(item_line("ok")).encode() + b"\n" + b"[" * 100_000 + b"\n")
    upload.name = "items.jsonl"
    response = admin_api.post(import_url(campaign), data={"file": upload}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert [(error["line"], error["message"]) for error in response.json()["errors"]] == [
        (2, "JSON is nested too deeply")]


def test_the_import_service_refuses_a_surrogate_in_a_list_of_items(campaign):
    from annotation.services.imports import items_import
    from crossfeed.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        items_import(campaign=campaign, source=[item_line("ok"), item_line("bad", prompt="x \ud800")])
    assert [(error["line"], error["field"]) for error in refused.value.errors] == [(2, "prompt.text")]


# --- the annotation page's form ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", ["²", "٣", "9" * 5000, "1" * 4299, "-1", " 1"])
def test_an_odd_rank_in_the_page_form_is_a_form_error(client, annotator, leased, rank):
    client.force_login(annotator)
    fields = {f"rank_{key}": value for key, value in ranks_for(leased).items()}
    first = next(iter(fields))
    fields[first] = rank
    response = client.post(reverse("annotation:submit", kwargs={"item_id": leased.id}),
                           {**fields, "idempotency_key": new_key()}, **HTMX)
    assert response.status_code == 422, response.status_code
    assert "Choose a rank from the list." in response.content.decode()
    assert not Judgment.objects.exists()


@pytest.mark.parametrize("field, value", [("seconds_spent", "9" * 5000), ("rendered_at", "9" * 30),
                                          ("seconds_spent", "²")])
def test_oversized_numbers_in_the_page_form_are_form_errors(client, annotator, leased, field, value):
    client.force_login(annotator)
    fields = {f"rank_{key}": value for key, value in ranks_for(leased).items()}
    response = client.post(reverse("annotation:submit", kwargs={"item_id": leased.id}),
                           {**fields, "idempotency_key": new_key(), field: value}, **HTMX)
    assert response.status_code == 422, response.status_code
    assert not Judgment.objects.exists()


# --- oversized numbers through the API ---------------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({"name": "c", "overlap": 10**30}, "overlap"),
    ({"name": "c", "lease_minutes": 2**63}, "lease_minutes"),
    ({"name": "c", "overlap": int("9" * 4000)}, "overlap"),
])
def test_oversized_campaign_numbers_are_a_400(admin_api, body, field):
    response = admin_api.post("/api/v1/campaigns/", data=body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()


@pytest.mark.parametrize("body, field", [
    ({"min_judgments": 2**64}, "min_judgments"),
    ({"seed": 2**63}, "seed"),
    ({"seed": int("9" * 4000)}, "seed"),
])
def test_oversized_export_numbers_are_a_400(admin_api, campaign, body, field):
    response = admin_api.post(f"/api/v1/campaigns/{campaign.id}/exports/", data=body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()


def test_an_oversized_seconds_spent_is_a_400(api, annotator, leased):
    response = api(annotator).post(f"/api/v1/items/{leased.id}/judgments/",
                                   data=judgment_body(leased, seconds_spent=10**40), format="json")
    assert response.status_code == 400, response.content[:300]
    assert "seconds_spent" in response.json()


def test_an_oversized_id_in_a_body_is_a_400(admin_api, db):
    response = admin_api.post("/api/v1/training-runs/", data={"kind": "dpo", "base_model": 2**70, "export": 2**64},
                              format="json")
    assert response.status_code == 400, response.content[:300]
    assert {"base_model", "export"} <= set(response.json())


# --- the admin ---------------------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_evaluation_run_admin_list_shows_a_run(staff, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    base = BaseModel.objects.create(name="tiny", path=str(tmp_path))
    EvaluationRun.objects.create(base_model=base, benchmarks=["xcopa"])

    response = staff.get(reverse("admin:evaluation_evaluationrun_changelist"))

    assert response.status_code == 200
    assert "tiny" in response.content.decode()


def campaign_form(**changes) -> dict:
    # The campaign page's inlines (guidelines per language, pay rates) post their management forms, empty here.
    inlines = {f"{prefix}-{field}": value for prefix in ("translated_guidelines", "pay_rates")
               for field, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"),
                                    ("MAX_NUM_FORMS", "1000"))}
    return {"name": "Admin campaign", "guidelines": "", "overlap": "3", "lease_minutes": "10", "status": "active",
            "flag_vocabulary": '["wrong_language", "unsafe"]', **inlines, **changes}


@pytest.mark.parametrize("changes, field", [
    ({"flag_vocabulary": "[1, 2]"}, "flag_vocabulary"),
    ({"flag_vocabulary": '["same", "same"]'}, "flag_vocabulary"),
    ({"flag_vocabulary": '"wrong_language"'}, "flag_vocabulary"),
    ({"flag_vocabulary": '["' + SURROGATE + '"]'}, "flag_vocabulary"),
    ({"flag_vocabulary": '{"a": 1}'}, "flag_vocabulary"),
    ({"flag_vocabulary": "[" * 100_000}, "flag_vocabulary"),
    ({"overlap": "0"}, "overlap"),
    ({"overlap": "21"}, "overlap"),
    ({"overlap": "9" * 5000}, "overlap"),
    ({"lease_minutes": "99999"}, "lease_minutes"),
    ({"name": "   "}, "name"),
])
def test_the_admin_add_campaign_form_applies_the_service_rules(staff, changes, field):
    response = staff.post(reverse("admin:annotation_campaign_add"), campaign_form(**changes))
    assert response.status_code == 200, response.status_code  # the form again, with its errors
    assert field in response.context["adminform"].form.errors, response.context["adminform"].form.errors
    assert not Campaign.objects.exists()


def test_the_admin_add_campaign_form_refuses_a_second_campaign_of_the_same_name(staff, campaign):
    response = staff.post(reverse("admin:annotation_campaign_add"), campaign_form(name=campaign.name.upper()))
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors["name"])


def test_the_admin_add_campaign_form_creates_through_the_service(staff, admin_user):
    response = staff.post(reverse("admin:annotation_campaign_add"), campaign_form(name="  Spaced  "))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    campaign = Campaign.objects.get()
    assert campaign.name == "Spaced" and campaign.created_by == admin_user
    assert campaign.flag_vocabulary == ["wrong_language", "unsafe"]


def test_the_admin_change_campaign_form_applies_the_service_rules(staff, campaign):
    url = reverse("admin:annotation_campaign_change", args=[campaign.id])
    response = staff.post(url, campaign_form(name=campaign.name, flag_vocabulary="[1, 2]"))
    assert response.status_code == 200
    assert "flag_vocabulary" in response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.flag_vocabulary != [1, 2]


def test_the_admin_change_campaign_form_refuses_another_campaigns_name(staff, campaign, admin_user):
    from annotation.services.campaigns import campaign_create

    other = campaign_create(name="Other", created_by=admin_user)
    url = reverse("admin:annotation_campaign_change", args=[other.id])
    response = staff.post(url, campaign_form(name=campaign.name))
    assert response.status_code == 200
    assert "already exists" in str(response.context["adminform"].form.errors["name"])


def test_a_campaign_the_admin_saved_serves_its_annotators(staff, client, annotator, import_items):
    staff.post(reverse("admin:annotation_campaign_add"), campaign_form(flag_vocabulary='["odd one", "x"]'))
    campaign = Campaign.objects.get()
    import_items(campaign, [item_line("via-admin")])
    client.force_login(annotator)
    response = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX)
    assert response.status_code == 200
    assert "odd one" in response.content.decode()



def test_the_admin_campaign_forms_show_the_flags_as_json(staff, campaign):
    add = staff.get(reverse("admin:annotation_campaign_add"))
    assert add.status_code == 200
    assert "wrong_language" in add.content.decode()  # the default vocabulary, prefilled
    change = staff.get(reverse("admin:annotation_campaign_change", args=[campaign.id]))
    assert change.status_code == 200
    assert "&quot;wrong_language&quot;" in change.content.decode()
