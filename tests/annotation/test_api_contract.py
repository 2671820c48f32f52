"""The REST API v1 contract for annotation (ARCHITECTURE.md), through HTTP with real tokens.

Every request here authenticates with `Authorization: Token <key>`, as external clients do; nothing uses
force_authenticate, so the token authentication itself is under test.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import Campaign, Item, Judgment, JudgmentSubmission, Lease
from crossfeed.tokens.models import APIToken
from crossfeed.tokens.services import token_digest, token_issue
from tests.conftest import PASSWORD, item_line, jsonl, new_key, ranks_for

LANGUAGE_KEYS = {"code", "name", "native_name", "script", "direction", "tier", "flores_code", "feedback_default"}
# The contract's item keys, plus what we added to it ("add to it freely"): the campaign id.
ITEM_KEYS = {"id", "prompt", "pivot", "responses", "lease_expires_at"} | {"campaign"} | {"task"}
TEXT_KEYS = {"text", "language", "direction"}
# The contract's response keys, plus the machine's language check (issue 13): null when nothing was measured.
RESPONSE_KEYS = {"id", "text", "language", "direction"} | {"detected_language", "detected_confidence"}
PAIR_KEYS = {"prompt_language", "response_language", "items", "judgments", "complete_items", "agreement"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every annotator fixture hashes a password; PBKDF2's 1M rounds would make this file take a minute.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=user)}")
    return client


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    return token_client(admin_user)


@pytest.fixture
def annotator_api(annotator) -> APIClient:
    return token_client(annotator)


def judge(client: APIClient, item: Item, **extra):
    body = {"ranks": ranks_for(item), "idempotency_key": new_key(), **extra}
    return client.post(f"/api/v1/items/{item.id}/judgments/", body, format="json")


def items_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.id}/items/"


# --- languages ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_the_language_registry(annotator_api):
    response = annotator_api.get("/api/v1/languages/")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) >= 100
    assert all(set(row) == LANGUAGE_KEYS for row in rows)
    assert sum(row["feedback_default"] for row in rows) == 30
    by_code = {row["code"]: row for row in rows}
    assert by_code["sw"]["flores_code"] == "swh_Latn"
    assert by_code["ar"]["direction"] == "rtl"
    assert by_code["ta"]["direction"] == "ltr"


@pytest.mark.django_db
def test_it_refuses_a_wrong_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/languages/").status_code == 401


# --- annotators -------------------------------------------------------------------------------------------------


def test_it_creates_an_annotator_whose_token_works(admin_api, campaign):
    response = admin_api.post(
        "/api/v1/annotators/",
        {"username": "swahili1", "password": PASSWORD, "native_languages": ["sw"], "reading_languages": ["en"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "username", "token"} <= set(body)
    assert body["username"] == "swahili1"
    assert "password" not in body
    assert APIToken.objects.get(user_id=body["id"]).digest == token_digest(body["token"])  # stored as a hash

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/languages/").status_code == 200
    # The token is an annotator's: it may ask for work.
    assert client.get(f"/api/v1/campaigns/{campaign.id}/next/").status_code == 204


def test_it_refuses_a_duplicate_username(admin_api, annotator):
    response = admin_api.post(
        "/api/v1/annotators/",
        {"username": annotator.username.upper(), "password": PASSWORD, "native_languages": ["ta"]},
        format="json",
    )
    assert response.status_code == 400
    assert "already exists" in response.json()["username"][0]


def test_it_names_the_field_with_an_unknown_language(admin_api):
    response = admin_api.post(
        "/api/v1/annotators/",
        {"username": "nobody", "password": PASSWORD, "native_languages": ["sw"], "reading_languages": ["xx-klingon"]},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["reading_languages"]
    assert "xx-klingon" in body["reading_languages"][0]


# --- campaigns --------------------------------------------------------------------------------------------------


def test_it_creates_and_reads_a_campaign(admin_api, annotator_api):
    response = admin_api.post(
        "/api/v1/campaigns/", {"name": "Swahili to Tamil", "overlap": 3, "guidelines": "Rank *carefully*."},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Swahili to Tamil"
    assert created["overlap"] == 3
    assert created["lease_minutes"] == 10  # the default

    response = annotator_api.get(f"/api/v1/campaigns/{created['id']}/")
    assert response.status_code == 200
    assert response.json() == created


def test_it_refuses_an_invalid_campaign(admin_api, campaign):
    response = admin_api.post("/api/v1/campaigns/", {"name": campaign.name, "overlap": 0}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"overlap"}  # the type check answers first; the name is checked after
    response = admin_api.post("/api/v1/campaigns/", {"name": campaign.name}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]


# --- import -----------------------------------------------------------------------------------------------------


def test_it_imports_a_json_array(admin_api, campaign):
    lines = [item_line(f"arr-{index}") for index in range(3)]
    response = admin_api.post(items_url(campaign), lines, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "unchanged": 0, "updated": 0}
    assert campaign.items.count() == 3


def test_it_imports_a_jsonl_body(admin_api, campaign):
    body = jsonl([item_line(f"nd-{index}") for index in range(4)])
    response = admin_api.post(items_url(campaign), body, content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 4, "unchanged": 0, "updated": 0}


def test_it_imports_a_multipart_file(admin_api, campaign):
    upload = SimpleUploadedFile("items.jsonl", jsonl([item_line("mp-0"), item_line("mp-1")]),
                                content_type="application/x-ndjson")
    response = admin_api.post(items_url(campaign), {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 2, "unchanged": 0, "updated": 0}


def test_it_asks_for_the_file_field_of_a_multipart_upload(admin_api, campaign):
    upload = SimpleUploadedFile("items.jsonl", jsonl([item_line("mp-0")]))
    response = admin_api.post(items_url(campaign), {"items": upload}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_it_reimports_idempotently(admin_api, campaign):
    lines = [item_line(f"re-{index}") for index in range(3)]
    assert admin_api.post(items_url(campaign), lines, format="json").status_code == 201
    response = admin_api.post(items_url(campaign), jsonl(lines), content_type="application/x-ndjson")
    assert response.status_code == 201
    assert response.json() == {"created": 0, "unchanged": 3, "updated": 0}
    lines[1]["prompt"]["text"] = "A better prompt"
    response = admin_api.post(items_url(campaign), lines, format="json")
    assert response.json() == {"created": 0, "unchanged": 2, "updated": 1}
    assert campaign.items.count() == 3


def test_it_reports_every_bad_line_and_stores_nothing(admin_api, campaign):
    good = item_line("good-0")
    unknown_language = item_line("bad-lang", response_lang="tlh")
    one_response = item_line("bad-n", n=1)
    body = b"".join([
        jsonl([good]),                      # line 1
        b'{"external_id": "broken",\n',     # line 2: not JSON
        b"\n",                              # line 3: blank, still counted
        jsonl([unknown_language]),          # line 4
        jsonl([item_line("good-1")]),       # line 5
        jsonl([one_response]),              # line 6
    ])
    before = Item.objects.count()
    response = admin_api.post(items_url(campaign), body, content_type="application/x-ndjson")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert all(set(error) == {"line", "field", "message"} for error in errors)
    assert sorted({error["line"] for error in errors}) == [2, 4, 6]
    assert any(error["line"] == 4 and error["field"].startswith("responses") for error in errors)
    assert any(error["line"] == 6 and error["field"].startswith("responses") for error in errors)
    assert Item.objects.count() == before


def test_it_numbers_the_errors_of_a_json_array_from_one(admin_api, campaign):
    lines = [item_line("ok"), {"external_id": "no-prompt", "responses": []}, item_line("ok-2")]
    response = admin_api.post(items_url(campaign), lines, format="json")
    assert response.status_code == 400
    assert {error["line"] for error in response.json()["errors"]} == {2}
    assert campaign.items.count() == 0


def test_it_maps_a_flores_code(admin_api, campaign):
    line = item_line("flores-0")
    line["prompt"]["language"] = "swh_Latn"
    for response in line["responses"]:
        response["language"] = "tam_Taml"
    response = admin_api.post(items_url(campaign), [line], format="json")
    assert response.status_code == 201, response.content
    item = campaign.items.get()
    assert item.prompt_language_id == "sw"
    assert item.response_language_id == "ta"


# --- next -------------------------------------------------------------------------------------------------------


def test_it_leases_the_next_item_with_the_contract_shape(annotator_api, items):
    response = annotator_api.get(f"/api/v1/campaigns/{items[0].campaign_id}/next/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"item", "task"}
    item = body["item"]
    assert set(item) == ITEM_KEYS
    assert body["task"] == item["task"] == "ranking"
    assert set(item["prompt"]) == TEXT_KEYS
    assert item["prompt"]["language"] == "sw"
    assert item["prompt"]["direction"] == "ltr"
    assert set(item["pivot"]) == TEXT_KEYS
    assert item["pivot"]["language"] == "en"
    stored = Item.objects.get(pk=item["id"])
    assert {response["id"] for response in item["responses"]} == set(stored.responses.values_list("id", flat=True))
    assert all(set(response) == RESPONSE_KEYS for response in item["responses"])
    assert all(response["language"] == "ta" for response in item["responses"])
    assert all(response["detected_language"] is None and response["detected_confidence"] is None
               for response in item["responses"])
    lease = Lease.objects.get(item_id=item["id"])
    assert item["lease_expires_at"] is not None
    assert abs((lease.expires_at - timezone.now()) - timedelta(minutes=10)) < timedelta(seconds=30)


def test_it_gives_the_same_item_while_the_lease_lives(annotator_api, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    first = annotator_api.get(url).json()["item"]["id"]
    second = annotator_api.get(url).json()["item"]["id"]
    assert first == second
    assert Lease.objects.count() == 1


def test_it_says_no_content_when_nothing_is_left(annotator_api, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    seen = []
    for _ in range(len(items) + 1):
        response = annotator_api.get(url)
        if response.status_code == 204:
            break
        item = Item.objects.get(pk=response.json()["item"]["id"])
        seen.append(item.id)
        assert judge(annotator_api, item).status_code == 201
    assert response.status_code == 204
    assert response.content == b""
    assert sorted(seen) == [item.id for item in items]


def test_it_gives_nothing_to_an_annotator_of_other_languages(outsider, items):
    response = token_client(outsider).get(f"/api/v1/campaigns/{items[0].campaign_id}/next/")
    assert response.status_code == 204


# --- judgments --------------------------------------------------------------------------------------------------


def test_it_stores_a_judgment(annotator_api, annotator, items):
    item = items[0]
    ranks = ranks_for(item, [2, 1, 2])
    first_id = next(iter(ranks))
    response = annotator_api.post(
        f"/api/v1/items/{item.id}/judgments/",
        {"ranks": ranks, "flags": {first_id: ["wrong_language"]}, "comment": "B is best", "seconds_spent": 42,
         "idempotency_key": new_key()},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    judgment = Judgment.objects.get(pk=body["id"])
    assert body == {"id": judgment.id, "outcome": "created", "revision": 1}
    assert judgment.annotator == annotator
    assert judgment.ranks == ranks
    assert judgment.flags == {first_id: ["wrong_language"]}
    assert judgment.comment == "B is best"
    assert judgment.seconds_spent == 42
    item.refresh_from_db()
    assert item.judgment_count == 1


def test_it_replays_the_same_idempotency_key(annotator_api, items):
    item = items[0]
    body = {"ranks": ranks_for(item), "idempotency_key": new_key()}
    url = f"/api/v1/items/{item.id}/judgments/"
    first = annotator_api.post(url, body, format="json")
    assert first.status_code == 201
    again = annotator_api.post(url, body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["outcome"] == "replayed"
    assert Judgment.objects.count() == 1
    assert JudgmentSubmission.objects.count() == 1
    item.refresh_from_db()
    assert item.judgment_count == 1


def test_it_revises_with_a_new_key(annotator_api, items):
    item = items[0]
    first = judge(annotator_api, item)
    revised = judge(annotator_api, item, ranks=ranks_for(item, [3, 2, 1]))
    assert revised.status_code == 200
    assert revised.json() == {"id": first.json()["id"], "outcome": "revised", "revision": 2}
    judgment = Judgment.objects.get()
    assert judgment.ranks == ranks_for(item, [3, 2, 1])
    assert JudgmentSubmission.objects.count() == 2
    item.refresh_from_db()
    assert item.judgment_count == 1


def _other_response_id(campaign, import_items) -> int:
    import_items(campaign, [item_line("someone-else")])
    return Item.objects.get(external_id="someone-else").responses.first().id


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda item, other: {"ranks": list(ranks_for(item).values())}, "ranks"),
        (lambda item, other: {"ranks": dict(list(ranks_for(item).items())[:-1])}, "ranks"),
        (lambda item, other: {"ranks": ranks_for(item, [1, 2, 4])}, "ranks"),
        (lambda item, other: {"ranks": ranks_for(item, [1, 2, 0])}, "ranks"),
        (lambda item, other: {"ranks": {**ranks_for(item), str(other): 1}}, "ranks"),
        (lambda item, other: {"flags": {next(iter(ranks_for(item))): ["boring"]}}, "flags"),
        (lambda item, other: {"flags": {str(other): ["wrong_language"]}}, "flags"),
        (lambda item, other: {"comment": "x" * 5001}, "comment"),
        (lambda item, other: {"seconds_spent": -1}, "seconds_spent"),
        (lambda item, other: {"seconds_spent": "a while"}, "seconds_spent"),
        (lambda item, other: {"idempotency_key": None}, "idempotency_key"),
        (lambda item, other: {"idempotency_key": "has spaces"}, "idempotency_key"),
    ],
    ids=["ranks-list", "rank-missing", "rank-too-high", "rank-zero", "foreign-response", "unknown-flag",
         "flag-foreign-response", "comment-too-long", "seconds-negative", "seconds-text", "key-null", "key-bad"],
)
def test_it_refuses_an_invalid_judgment_with_a_message_per_field(
    annotator_api, items, campaign, import_items, change, field
):
    item = items[0]
    other = _other_response_id(campaign, import_items)
    body = {"ranks": ranks_for(item), "idempotency_key": new_key(), **change(item, other)}
    body = {key: value for key, value in body.items() if value is not None}
    response = annotator_api.post(f"/api/v1/items/{item.id}/judgments/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors
    assert all(isinstance(message, str) and message for message in errors[field])
    assert Judgment.objects.count() == 0
    assert JudgmentSubmission.objects.count() == 0


def test_it_names_every_bad_field_at_once(annotator_api, items):
    item = items[0]
    body = {"ranks": ranks_for(item, [1, 2, 9]), "comment": "x" * 5001, "seconds_spent": -5}
    response = annotator_api.post(f"/api/v1/items/{item.id}/judgments/", body, format="json")
    assert response.status_code == 400
    assert {"comment", "seconds_spent", "idempotency_key"} <= set(response.json())


def test_it_names_the_responses_without_a_rank(annotator_api, items):
    item = items[0]
    ranks = ranks_for(item)
    missing = list(ranks)[-1]
    del ranks[missing]
    response = annotator_api.post(f"/api/v1/items/{item.id}/judgments/",
                                  {"ranks": ranks, "idempotency_key": new_key()}, format="json")
    assert response.status_code == 400
    assert any(missing in message for message in response.json()["ranks"])


def test_it_refuses_a_malformed_json_body(annotator_api, items):
    response = annotator_api.post(f"/api/v1/items/{items[0].id}/judgments/", b'{"ranks": {',
                                  content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_it_refuses_a_json_array_as_judgment(annotator_api, items):
    response = annotator_api.post(f"/api/v1/items/{items[0].id}/judgments/", [1, 2], format="json")
    assert response.status_code == 400
    assert "body" in response.json()


def test_it_hides_an_item_from_an_annotator_of_other_languages(outsider, items):
    item = items[0]
    response = judge(token_client(outsider), item)
    assert response.status_code == 404
    assert Judgment.objects.count() == 0
    assert token_client(outsider).get(f"/api/v1/items/{item.id}/").status_code == 404


def test_it_says_404_for_an_item_that_does_not_exist(annotator_api, items):
    response = annotator_api.post("/api/v1/items/999999/judgments/",
                                  {"ranks": {"1": 1}, "idempotency_key": new_key()}, format="json")
    assert response.status_code == 404


def test_it_refuses_a_judgment_for_a_full_item(make_annotator, annotator, other_annotator, items):
    item = items[0]  # the campaign wants k = 2 judgments per item
    assert judge(token_client(annotator), item).status_code == 201
    assert judge(token_client(other_annotator), item).status_code == 201
    third = make_annotator("tamil3", ["ta"], ["sw"])
    response = judge(token_client(third), item)
    assert response.status_code == 409
    assert "received all the judgments it needed" in response.json()["detail"]
    item.refresh_from_db()
    assert item.judgment_count == 2
    assert not Judgment.objects.filter(annotator=third).exists()


def test_it_accepts_a_judgment_after_the_lease_expired_while_room_is_left(annotator_api, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    item = Item.objects.get(pk=annotator_api.get(url).json()["item"]["id"])
    Lease.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = judge(annotator_api, item)
    assert response.status_code == 201, response.content
    item.refresh_from_db()
    assert (item.judgment_count, item.lease_count) == (1, 0)
    assert not Lease.objects.exists()


def test_it_accepts_a_judgment_after_the_expired_lease_was_reclaimed(annotator_api, other_annotator, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    item = Item.objects.get(pk=annotator_api.get(url).json()["item"]["id"])
    Lease.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    token_client(other_annotator).get(url)  # reclaims the expired lease on its way
    assert not Lease.objects.filter(item=item, annotator__username="tamil1").exists()
    response = judge(annotator_api, item)
    assert response.status_code == 201, response.content
    item.refresh_from_db()
    assert item.judgment_count == 1
    assert item.judgment_count + item.lease_count <= item.target


def test_it_refuses_work_in_a_paused_campaign(annotator_api, items, campaign):
    campaign.status = Campaign.Status.PAUSED
    campaign.save()
    response = annotator_api.get(f"/api/v1/campaigns/{campaign.id}/next/")
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]
    response = judge(annotator_api, items[0])
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]
    assert Judgment.objects.count() == 0
    assert Lease.objects.count() == 0


# --- skip and item ----------------------------------------------------------------------------------------------


def test_it_skips_a_leased_item(annotator_api, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    first = annotator_api.get(url).json()["item"]["id"]
    response = annotator_api.post(f"/api/v1/items/{first}/skip/", {"reason": "cannot read"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"skipped": first}
    assert annotator_api.get(url).json()["item"]["id"] != first


def test_it_shows_an_item_with_its_live_lease(annotator_api, items):
    url = f"/api/v1/campaigns/{items[0].campaign_id}/next/"
    leased = annotator_api.get(url).json()["item"]
    shown = annotator_api.get(f"/api/v1/items/{leased['id']}/").json()
    assert shown == leased


# --- stats ------------------------------------------------------------------------------------------------------


def test_it_reports_stats_per_language_pair(admin_api, annotator, other_annotator, campaign, import_items, items):
    import_items(campaign, [item_line("en-ar-0", prompt_lang="en", response_lang="ar", pivot=False)])
    for item in items[:2]:
        for user in (annotator, other_annotator):
            assert judge(token_client(user), item).status_code == 201
    assert judge(token_client(annotator), items[2]).status_code == 201

    response = admin_api.get(f"/api/v1/campaigns/{campaign.id}/stats/")
    assert response.status_code == 200
    body = response.json()
    rows = {(row["prompt_language"], row["response_language"]): row for row in body["language_pairs"]}
    assert all(set(row) == PAIR_KEYS for row in body["language_pairs"])
    assert set(rows) == {("sw", "ta"), ("en", "ar")}
    assert rows[("sw", "ta")] | {"agreement": None} == {
        "prompt_language": "sw", "response_language": "ta", "items": 5, "judgments": 5, "complete_items": 2,
        "agreement": None,
    }
    # Two annotators gave the same full ranking to two items: perfect agreement.
    assert rows[("sw", "ta")]["agreement"] == pytest.approx(1.0)
    assert rows[("en", "ar")] == {
        "prompt_language": "en", "response_language": "ar", "items": 1, "judgments": 0, "complete_items": 0,
        "agreement": None,
    }
    assert (body["items"], body["judgments"], body["complete_items"]) == (6, 5, 2)


# --- schema and docs --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_serves_an_openapi_document():
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/items/{item_id}/judgments/" in document["paths"]
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert json.loads(response.content)["info"]["title"] == "Crossfeed API"


@pytest.mark.django_db
def test_it_serves_the_docs_without_a_cdn():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html
    for needle in ("cdn.", "jsdelivr", "unpkg", "cdnjs"):
        assert needle not in html
