"""The annotation services' messages in the annotator's interface language: on the annotation page (the language
chosen in the interface) and through the API (the request's Accept-Language, else the person's chosen language);
and every service message translated in every catalog."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from rest_framework.test import APIClient

from annotation.models import AnnotatorProfile, Item, Lease
from annotation.services.assignment import lease_next
from annotation.services.judgments import judgment_submit
from annotation.services.people import annotator_create
from tests.conftest import PASSWORD, item_line, new_key, ranks_for
from tests.test_i18n import LOCALE, TRANSLATED

FULL = ("this item received all the judgments it needed while you were working on it (your lease had expired); your "
        "ranking was not stored — please continue with the next item")
NO_RANK = "no rank for response(s) %(responses)s"


def _in(code: str, text: str) -> str:
    with translation.override(code):
        return translation.gettext(text)


@pytest.fixture
def one_place(campaign, import_items):
    """A campaign whose one sw→ta item needs a single judgment."""
    campaign.overlap = 1
    campaign.save()
    import_items(campaign, [item_line("only")])
    return campaign.items.get()


@pytest.mark.parametrize("code", ["fr", "sw"])
def test_the_page_tells_of_a_lost_lease_in_the_interface_language(client, annotator, other_annotator, one_place,
                                                                  code):
    client.force_login(annotator)
    client.post(reverse("ui_language_set"), {"language": code})
    page = client.post(reverse("annotation:next", kwargs={"campaign_id": one_place.campaign_id}))
    assert f'data-item="{one_place.id}"' in page.content.decode()
    # The lease runs out; someone else takes the item's only place and judges it.
    Lease.objects.filter(annotator=annotator).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_next(campaign=one_place.campaign, annotator=other_annotator).item_id == one_place.id
    judgment_submit(annotator=other_annotator, item_id=one_place.id, ranks=ranks_for(one_place),
                    idempotency_key=new_key())
    fields = {f"rank_{key}": rank for key, rank in ranks_for(one_place).items()}
    page = client.post(reverse("annotation:submit", kwargs={"item_id": one_place.id}),
                       {**fields, "idempotency_key": new_key()}, HTTP_HX_REQUEST="true")
    html = page.content.decode()
    assert _in(code, FULL) != FULL and escape(_in(code, FULL)) in html
    assert FULL not in html


@pytest.fixture
def token_of(db):
    """An annotator of sw→ta with an API token, and an interface language chosen (or not) in their profile."""
    def make(ui_language: str = "") -> APIClient:
        profile, key = annotator_create(username=f"api-{ui_language or 'none'}", password=PASSWORD,
                                        native_languages=["ta"], reading_languages=["sw"])
        AnnotatorProfile.objects.filter(pk=profile.pk).update(ui_language=ui_language)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


def _submit_without_a_rank(client: APIClient, item: Item, **headers):
    ranks = ranks_for(item)
    missing = max(ranks, key=int)
    del ranks[missing]
    response = client.post(f"/api/v1/items/{item.id}/judgments/",
                           {"ranks": ranks, "idempotency_key": new_key()}, format="json", **headers)
    assert response.status_code == 400, response.content
    return response, {"responses": missing}


@pytest.mark.parametrize("code", ["fr", "sw"])
def test_the_api_answers_in_the_language_the_request_asks_for(token_of, items, code):
    response, values = _submit_without_a_rank(token_of(), items[0], HTTP_ACCEPT_LANGUAGE=code)
    assert response.json()["ranks"] == [_in(code, NO_RANK) % values]
    assert _in(code, NO_RANK) != NO_RANK and response["Content-Language"] == code


def test_the_api_answers_in_the_persons_chosen_language_when_the_request_names_none(token_of, items):
    client = token_of("sw")
    response, values = _submit_without_a_rank(client, items[0])
    assert response.json()["ranks"] == [_in("sw", NO_RANK) % values]
    # A language the client names wins over the profile's.
    response, values = _submit_without_a_rank(client, items[0], HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["ranks"] == [NO_RANK % values]


def test_the_api_stays_in_english_for_someone_who_chose_no_language(token_of, items):
    response, values = _submit_without_a_rank(token_of(), items[0])
    assert response.json()["ranks"] == [NO_RANK % values]


def test_a_closed_campaigns_refusal_is_translated_in_the_api(token_of, items):
    campaign = items[0].campaign
    campaign.status = campaign.Status.CLOSED
    campaign.save()
    response = token_of("fr").post(f"/api/v1/campaigns/{campaign.id}/next/")
    assert response.status_code == 409
    with translation.override("fr"):
        expected = translation.gettext("campaign %(name)r is %(status)s: no items are handed out") % {
            "name": campaign.name, "status": campaign.get_status_display()}
    assert response.json() == {"detail": expected} and "campagne" in expected


# --- the catalogs ---------------------------------------------------------------------------------------------------

# Messages that annotators (and reviewers) can meet: the annotation services and the API's own.
SERVICE_SOURCES = re.compile(r"#: .*\b(annotation/services/\w+\.py|annotation/api\.py|crossfeed/i18n\.py)")


def _entries(po: str):
    """(references, flags, msgid, msgstr) of each entry of a .po file, its continuation lines joined."""
    for block in po.split("\n\n")[1:]:
        lines = block.strip().splitlines()
        references = "\n".join(line for line in lines if line.startswith("#:"))
        flags = " ".join(line for line in lines if line.startswith("#,"))
        fields: dict[str, str] = {}
        current = ""
        for line in lines:
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[current] += line[1:-1]
            else:
                current, _space, value = line.partition(" ")
                fields[current] = value[1:-1]
        yield references, flags, fields.get("msgid", ""), [v for k, v in fields.items() if k.startswith("msgstr")]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_service_message_is_translated_in_every_catalog(code):
    po = (LOCALE / translation.to_locale(code) / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    services = [(flags, msgid, strings) for references, flags, msgid, strings in _entries(po)
                if SERVICE_SOURCES.search(references)]
    assert len(services) >= 60, len(services)
    untranslated = [msgid for flags, msgid, strings in services if "fuzzy" in flags or not all(strings)]
    assert not untranslated, f"{code}: {len(untranslated)} service messages untranslated, e.g. {untranslated[:3]}"
