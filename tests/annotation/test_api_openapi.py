"""The OpenAPI document: generated without warnings, valid, and describing the v1 contract."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command

CONTRACT = {
    "/api/v1/languages/": {"get"},
    "/api/v1/annotators/": {"post"},
    "/api/v1/campaigns/": {"get", "post"},
    "/api/v1/campaigns/{campaign_id}/": {"get"},
    "/api/v1/campaigns/{campaign_id}/items/": {"post"},
    "/api/v1/campaigns/{campaign_id}/next/": {"get"},
    "/api/v1/campaigns/{campaign_id}/stats/": {"get"},
    "/api/v1/items/{item_id}/judgments/": {"post"},
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    # --fail-on-warn turns every drf-spectacular warning (a view it cannot introspect, a guessed type) into an
    # error; --validate checks the result against the OpenAPI 3 JSON schema.
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_it_generates_the_schema_without_warnings(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Crossfeed API"


def test_it_describes_every_contract_operation(schema):
    for path, methods in CONTRACT.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_it_documents_the_judgment_outcomes(schema):
    operation = schema["paths"]["/api/v1/items/{item_id}/judgments/"]["post"]
    assert {"200", "201", "409"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    # One of two bodies: a ranking, or a post-edit (on a post-editing campaign's item).
    kinds = [ref["$ref"].rsplit("/", 1)[-1] for ref in schema["components"]["schemas"][body]["oneOf"]]
    required = [set(schema["components"]["schemas"][kind]["required"]) for kind in kinds]
    assert required == [{"ranks", "idempotency_key"}, {"verdict", "idempotency_key"}]


def test_it_documents_the_three_import_bodies(schema):
    operation = schema["paths"]["/api/v1/campaigns/{campaign_id}/items/"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json", "application/x-ndjson", "multipart/form-data",
    }
    assert {"201", "400"} <= set(operation["responses"])


def test_it_documents_no_content_from_next(schema):
    operation = schema["paths"]["/api/v1/campaigns/{campaign_id}/next/"]["get"]
    assert {"200", "204"} <= set(operation["responses"])
    item = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "item" in schema["components"]["schemas"][item]["properties"]


def test_it_declares_token_authentication(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["in"] == "header"
    assert schemes["tokenAuth"]["name"] == "Authorization"
    assert '"Token"' in schemes["tokenAuth"]["description"]
    assert "cookieAuth" in schemes  # the browser session
