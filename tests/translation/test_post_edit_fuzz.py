"""The annotator's endpoints fuzzed from the OpenAPI schema (schemathesis, as tests/test_hostile.py does) with the ids
of a post-editing campaign: every answer is no server error and matches the schema (the post-edit item's payload,
the post-edit body's refusals)."""

from __future__ import annotations

import pytest
import schemathesis

from annotation.services.assignment import lease_next
from annotation.services.judgments import judgment_submit
from crossfeed.tokens.services import token_issue
from tests.conftest import new_key
from tests.test_hostile import fuzz, quiet_fuzzing, wsgi_in_test_transaction  # noqa: F401 - fixtures shared
from tests.translation.post_edit_world import alpaca_rows, make_job, make_set
from translation.services.post_edit import post_edit_campaign_create

OPERATIONS = {"/api/v1/campaigns/{campaign_id}/next/", "/api/v1/items/{item_id}/",
              "/api/v1/items/{item_id}/judgments/", "/api/v1/items/{item_id}/skip/",
              "/api/v1/campaigns/{campaign_id}/"}
EXAMPLES = 40


@pytest.mark.django_db
def test_post_edit_endpoints_answer_fuzzed_requests_by_their_schema(make_annotator, quiet_fuzzing,  # noqa: F811
                                                                    wsgi_in_test_transaction):  # noqa: F811
    job = make_job(make_set(alpaca_rows(4)), languages=["ar"], quality=lambda row, language: 0.1)
    campaign = post_edit_campaign_create(job=job, campaign_name="Fuzzed post-edits", overlap=2)
    arabic, other = make_annotator("arabic-fuzz", ["ar"], ["en"]), make_annotator("arabic-fuzz2", ["ar"], ["en"])
    judged = lease_next(campaign=campaign, annotator=other)
    judgment_submit(annotator=other, item_id=judged.item_id, verdict="accepted", idempotency_key=new_key())
    leased = lease_next(campaign=campaign, annotator=arabic)
    ids = {"campaign_id": campaign.id, "item_id": leased.item_id}
    headers = {"Authorization": f"Token {token_issue(user=arabic)}"}

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction)
    operations = [result.ok() for result in schema.get_all_operations()]
    chosen = [operation for operation in operations if operation.path in OPERATIONS]
    assert len(chosen) >= len(OPERATIONS)
    failures, sent = [], 0
    for operation in chosen:
        try:
            sent += fuzz(operation, headers, ids, EXAMPLES)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert sent >= len(chosen)
    assert not failures, "\n\n".join(failures)
