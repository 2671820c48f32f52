"""Post-editing through the REST API (docs/api.md): `next` says the task and gives each response its field and
source; the post-edit body is accepted on a post-editing campaign and a ranking refused there (and the other way
round); imports and exports of such a campaign are refused; a translation job started with `post_edit` makes the
campaign when it succeeds (a real run against the fake OpenAI-compatible server), and its report counts the
post-edits as they come."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotation.models import Campaign, Item, JobStatus, Judgment
from annotation.services.judgments import MAX_BODY_BYTES, MAX_POST_EDIT_BODY_BYTES
from tests.conftest import item_line, new_key, ranks_for
from tests.translation.fake_translator import ROWS as ROWS_SERVED
from tests.translation.post_edit_world import make_job, make_set
from translation.models import Translation, TranslationJob
from translation.services.execution import translation_job_execute
from translation.services.post_edit import post_edit_campaign_create

ROWS = [{"id": "sky", "instruction": "Explain why the sky is blue.", "input": "On a clear day.",
         "output": "Sunlight is scattered by the air."}]


NO_EXPORT = ("a post-editing campaign has no rankings; its edits go into the instruction set's SFT export "
             "(POST /api/v1/instruction-sets/{id}/exports/)")


@pytest.fixture
def arabic(make_annotator):
    return make_annotator("arabic-api", ["ar"], ["en"])


@pytest.fixture
def post_edit_campaign(db):
    job = make_job(make_set(ROWS), languages=["ar"], quality=lambda row, language: 0.2)
    return post_edit_campaign_create(job=job, campaign_name="API post-edits")


def next_item(client, campaign) -> dict:
    response = client.get(f"/api/v1/campaigns/{campaign.id}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def judge(client, item_id: int, body: dict):
    return client.post(f"/api/v1/items/{item_id}/judgments/", {"idempotency_key": new_key(), **body}, format="json")


def test_next_says_the_task_and_gives_each_field_with_its_source(api, arabic, post_edit_campaign):
    body = next_item(api(arabic), post_edit_campaign)
    assert body["task"] == body["item"]["task"] == "post_edit"
    item = body["item"]
    assert item["prompt"] == {"text": "Explain why the sky is blue.\n\nOn a clear day.\n\nSunlight is scattered by "
                                      "the air.", "language": "en", "direction": "ltr"}
    assert "pivot" not in item and item["lease_expires_at"] is not None
    # In the row's order, never shuffled; right to left for Arabic.
    assert [(r["field"], r["source"], r["text"], r["language"], r["direction"]) for r in item["responses"]] == [
        ("instruction", "Explain why the sky is blue.", "[ar] Explain why the sky is blue.", "ar", "rtl"),
        ("input", "On a clear day.", "[ar] On a clear day.", "ar", "rtl"),
        ("output", "Sunlight is scattered by the air.", "[ar] Sunlight is scattered by the air.", "ar", "rtl"),
    ]
    detail = api(arabic).get(f"/api/v1/items/{item['id']}/").json()
    assert detail["task"] == "post_edit" and [r["field"] for r in detail["responses"]] == ["instruction", "input",
                                                                                             "output"]
    assert api(arabic).get(f"/api/v1/campaigns/{post_edit_campaign.id}/").json()["task"] == "post_edit"


def test_the_post_edit_body_is_accepted_and_lands_on_the_translation(api, arabic, post_edit_campaign):
    client = api(arabic)
    item = next_item(client, post_edit_campaign)["item"]
    output = next(r for r in item["responses"] if r["field"] == "output")
    key = new_key()
    body = {"verdict": "edited", "edits": {str(output["id"]): "ينتشر ضوء الشمس في الهواء."}, "comment": "fixed",
            "seconds_spent": 40, "idempotency_key": key}
    response = client.post(f"/api/v1/items/{item['id']}/judgments/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["outcome"] == "created"
    again = client.post(f"/api/v1/items/{item['id']}/judgments/", body, format="json")
    assert again.status_code == 200 and again.json()["outcome"] == "replayed"
    translation = Translation.objects.get(post_edit_item_id=item["id"])
    assert translation.post_edit == "edited" and translation.fields["output"] == "ينتشر ضوء الشمس في الهواء."
    assert translation.fields["instruction"] == "[ar] Explain why the sky is blue."
    assert 0 < translation.edit_distance <= 1
    revised = judge(client, item["id"], {"verdict": "unusable"})
    assert revised.status_code == 200 and revised.json() == {"id": response.json()["id"], "outcome": "revised",
                                                             "revision": 2}
    assert Translation.objects.get(pk=translation.pk).post_edit == "unusable"


def test_a_ranking_body_is_refused_on_a_post_edit_campaign(api, arabic, post_edit_campaign):
    client = api(arabic)
    item = next_item(client, post_edit_campaign)["item"]
    ranks = {str(r["id"]): position for position, r in enumerate(item["responses"], start=1)}
    response = judge(client, item["id"], {"ranks": ranks})
    assert response.status_code == 400
    assert "post-editing campaign" in response.json()["ranks"][0] and "verdict" in response.json()
    assert not Judgment.objects.exists()


def test_a_post_edit_body_is_refused_on_a_ranking_campaign(api, annotator, items):
    client = api(annotator)
    item = client.get(f"/api/v1/campaigns/{items[0].campaign_id}/next/").json()["item"]
    assert item["task"] == "ranking" and all("field" not in r for r in item["responses"])
    response = judge(client, item["id"], {"verdict": "accepted"})
    assert response.status_code == 400 and set(response.json()) == {"verdict"}
    assert "this campaign ranks responses" in response.json()["verdict"][0]
    stored = Item.objects.get(pk=item["id"])
    assert judge(client, item["id"], {"ranks": ranks_for(stored)}).status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    ({"verdict": "edited"}, "edits"),
    ({"verdict": "edited", "edits": {"1": ""}}, "edits"),
    ({"verdict": "fine"}, "verdict"),
    ({"verdict": "accepted", "edits": {"1": "text"}}, "edits"),
])
def test_bad_post_edit_bodies_get_a_message_by_field(api, arabic, post_edit_campaign, body, field):
    client = api(arabic)
    item = next_item(client, post_edit_campaign)["item"]
    response = judge(client, item["id"], body)
    assert response.status_code == 400 and field in response.json(), response.json()


def test_imports_and_exports_of_a_post_edit_campaign_are_refused(api, admin_user, post_edit_campaign):
    client = api(admin_user)
    response = client.post(f"/api/v1/campaigns/{post_edit_campaign.id}/items/",
                           [item_line("x", prompt_lang="en", response_lang="ar")], format="json")
    assert response.status_code == 400 and "post-editing campaign" in str(response.json())
    response = client.post(f"/api/v1/campaigns/{post_edit_campaign.id}/exports/", {"min_judgments": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["campaign"] == [NO_EXPORT]
    assert post_edit_campaign.items.count() == 1 and not post_edit_campaign.exports.exists()


# --- a translation job with post_edit -----------------------------------------------------------------------------


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


def start(admin_api, instruction_set, **body):
    return admin_api.post(reverse("api-set-translations", args=[instruction_set.id]), body, format="json")


def test_a_job_with_post_edit_makes_the_campaign_when_it_succeeds(admin_api, api, instruction_set,
                                                                  endpoint_translator, fake_server, arabic):
    # The translator answers the sky row's output in English (a copy): that row has no acceptable candidate in
    # either language and goes to post-editing; the other row's translations are perfect round trips (1.0).
    fake_server.wrong = {ROWS_SERVED[0]["output"]}
    response = start(admin_api, instruction_set, languages=["ar", "sw"], translators=[endpoint_translator.id],
                     post_edit={"campaign_name": "Arabic and Swahili", "overlap": 1})
    assert response.status_code == 201, response.json()
    job = TranslationJob.objects.get(pk=response.json()["id"])
    assert job.post_edit == {"campaign_name": "Arabic and Swahili", "overlap": 1, "audit_rate": 0.0}
    assert admin_api.get(reverse("api-translation-job", args=[job.id])).json()["post_edit_campaign"] is None

    translation_job_execute(job_id=job.id)
    body = admin_api.get(reverse("api-translation-job", args=[job.id])).json()
    assert body["status"] == JobStatus.SUCCEEDED and body["error"] == ""
    campaign = Campaign.objects.get(name="Arabic and Swahili")
    assert body["post_edit_campaign"] == campaign.id and campaign.task == "post_edit"
    assert sorted(campaign.items.values_list("external_id", flat=True)) == ["sky:ar", "sky:sw"]
    for code in ("ar", "sw"):
        assert body["per_language"][code]["post_edit"] == {"pending": 1, "accepted": 0, "edited": 0, "unusable": 0,
                                                           "mean_edit_distance": None}
        assert body["per_language"][code]["post_edited"] == 0
        assert body["per_language"][code]["not_acceptable"] == 1

    client = api(arabic)  # native Arabic, reads English: gets the Arabic item only
    item = next_item(client, campaign)["item"]
    assert item["prompt"]["language"] == "en" and {r["language"] for r in item["responses"]} == {"ar"}
    output = next(r for r in item["responses"] if r["field"] == "output")
    assert output["text"] == output["source"] == ROWS_SERVED[0]["output"]  # the English copy, to be fixed
    fixed = "ينتشر ضوء الشمس في الهواء، والضوء الأزرق هو الأكثر انتشارا، لذلك تبدو السماء كلها زرقاء."
    assert judge(client, item["id"], {"verdict": "edited", "edits": {str(output["id"]): fixed}}).status_code == 201
    assert client.get(f"/api/v1/campaigns/{campaign.id}/next/").status_code == 204

    report = admin_api.get(reverse("api-translation-job", args=[job.id])).json()["per_language"]
    assert report["ar"]["post_edited"] == 1 and report["sw"]["post_edited"] == 0
    assert report["ar"]["post_edit"]["edited"] == 1 and report["ar"]["post_edit"]["pending"] == 0
    sky = Translation.objects.get(job=job, language="ar", row__external_id="sky")
    assert sky.fields["output"] == fixed and sky.machine_fields["output"] == ROWS_SERVED[0]["output"]
    assert sky.usable and not sky.chosen
    assert report["ar"]["post_edit"]["mean_edit_distance"] == sky.edit_distance > 0.5  # the output was rewritten


def test_a_campaign_that_cannot_be_made_leaves_the_job_succeeded_with_the_reason(admin_api, instruction_set,
                                                                                 endpoint_translator):
    response = start(admin_api, instruction_set, languages=["sw"], translators=[endpoint_translator.id],
                     quality_threshold=0.99, post_edit={"campaign_name": "Swahili"})
    Campaign.objects.create(name="Swahili")  # taken while the job ran
    translation_job_execute(job_id=response.json()["id"])
    body = admin_api.get(reverse("api-translation-job", args=[response.json()["id"]])).json()
    assert body["status"] == JobStatus.SUCCEEDED and body["post_edit_campaign"] is None
    assert "post-editing campaign was not made" in body["error"] and "already exists" in body["error"]
    assert Campaign.objects.count() == 1 and not Item.objects.exists()
    assert body["per_language"]["sw"]["post_edit"]["pending"] == 0


@pytest.mark.parametrize(("post_edit", "field"), [
    ("Swahili", "post_edit"),
    ({"overlap": 2}, "post_edit"),
    ({"campaign_name": "A", "color": "red"}, "post_edit"),
    ({"campaign_name": ""}, "post_edit.campaign_name"),
    ({"campaign_name": "Test campaign"}, "post_edit.campaign_name"),
    ({"campaign_name": "A", "overlap": 21}, "post_edit.overlap"),
    ({"campaign_name": "A", "audit_rate": 2}, "post_edit.audit_rate"),
])
def test_a_bad_post_edit_refuses_the_job(admin_api, instruction_set, endpoint_translator, admin_user, post_edit,
                                         field):
    Campaign.objects.create(name="Test campaign")
    response = start(admin_api, instruction_set, languages=["sw"], translators=[endpoint_translator.id],
                     post_edit=post_edit)
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not TranslationJob.objects.exists()


def test_long_edits_fit_a_post_edit_body_and_a_ranking_keeps_its_own_bound(api, arabic, post_edit_campaign,
                                                                           annotator, items):
    client = api(arabic)
    item = next_item(client, post_edit_campaign)["item"]
    # Three fields of 20,000 Arabic characters, each escaped as \uXXXX: 360 KB, over a ranking's 256 KiB.
    edits = {str(response["id"]): "ب" * 20_000 for response in item["responses"]}
    body = json.dumps({"verdict": "edited", "edits": edits, "idempotency_key": new_key()})
    assert len(body) > MAX_BODY_BYTES
    response = client.post(f"/api/v1/items/{item['id']}/judgments/", body, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert Translation.objects.get(post_edit_item_id=item["id"]).fields["output"] == "ب" * 20_000
    huge = json.dumps({"verdict": "edited", "edits": edits, "comment": "x" * MAX_POST_EDIT_BODY_BYTES,
                       "idempotency_key": new_key()})
    response = client.post(f"/api/v1/items/{item['id']}/judgments/", huge, content_type="application/json")
    assert response.status_code == 400 and "a post-edit is at most" in response.json()["body"][0]
    # The same 360 KB sent to a ranking item is refused by size, as before post-editing existed.
    ranking = api(annotator)
    leased = ranking.get(f"/api/v1/campaigns/{items[0].campaign_id}/next/").json()["item"]
    response = ranking.post(f"/api/v1/items/{leased['id']}/judgments/", body, content_type="application/json")
    assert response.status_code == 400 and "a judgment is at most 262144 bytes" in response.json()["body"][0]
