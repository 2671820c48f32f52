"""Issue 15's annotation UI defects, through Django's test client: errors by letter, skip reasons and undo, the
revise page's progress and confirmation, the judgment admin (filters, ranks as a table)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotation.serializers import item_payload
from tests.conftest import new_key, ranks_for

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def browser(client, annotator):
    client.force_login(annotator)
    return client


def leased_item(browser, campaign):
    from annotation.models import Item

    html = browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX).content.decode()
    return Item.objects.get(pk=int(re.search(r'<form id="judgment-form"[^>]*data-item="(\d+)"', html, re.S).group(1)))


def display_order(item, user) -> list[str]:
    return [str(response["id"]) for response in item_payload(item, user.id, None)["responses"]]


# --- errors name the letters on screen ---------------------------------------------------------------------------


def test_it_names_a_missing_rank_by_its_letter_in_the_summary_and_the_card(browser, annotator, campaign, items):
    item = leased_item(browser, campaign)
    order = display_order(item, annotator)
    missing = order[1]  # shown as response B
    ranks = {f"rank_{key}": value for key, value in ranks_for(item).items() if key != missing}
    response = browser.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
                            {**ranks, "idempotency_key": new_key()}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    summary = re.search(r'<div class="error"[^>]*id="form-errors">(.*?)</div>', html, re.S).group(1)
    assert f'<li data-error-for="{missing}">Response B: Give this response a rank.</li>' in summary
    assert f"{missing}:" not in summary  # no internal id in the message
    # In B's card, tied to its rank list.
    assert re.search(rf'<select name="rank_{missing}"[^>]*aria-invalid="true" aria-describedby="error-{missing}"',
                     html)
    assert f'<p class="field-error" id="error-{missing}">Give this response a rank. </p>' in html
    for other in (order[0], order[2]):
        assert f'id="error-{other}"' not in html


# --- skip: "Other" with the annotator's words, an empty reason, skips listed and undone --------------------------


def skip(browser, item, **fields):
    return browser.post(reverse("annotation:skip", kwargs={"item_id": item.id}), fields, **HTMX)


def test_it_refuses_other_without_a_reason_and_keeps_the_item(browser, annotator, campaign, items):
    from annotation.models import Lease, Skip

    item = leased_item(browser, campaign)
    response = skip(browser, item, reason="other", reason_other="   ")
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="skip-error"' in html and "write your reason in the box" in html
    assert re.search(r'<input type="text" id="skip-reason-other"[^>]*aria-invalid="true" '
                     r'aria-describedby="skip-error"', html)
    assert '<option value="other" selected>' in html
    assert f'data-item="{item.id}"' in html
    assert not Skip.objects.exists()
    assert Lease.objects.filter(annotator=annotator, item=item).exists()


def test_it_stores_other_with_the_annotators_words(browser, annotator, campaign, items):
    from annotation.models import Skip

    item = leased_item(browser, campaign)
    assert skip(browser, item, reason="other", reason_other="  the prompt  is cut off ").status_code == 200
    assert Skip.objects.get(annotator=annotator, item=item).reason == "other: the prompt is cut off"


def test_it_stores_an_empty_api_reason_as_empty_and_the_admin_says_so(api, annotator, admin_user, client, campaign,
                                                                      items):
    from annotation.models import Skip
    from annotation.services.assignment import lease_next

    lease = lease_next(campaign=campaign, annotator=annotator)
    client_api = api(annotator)
    assert client_api.post(f"/api/v1/items/{lease.item_id}/skip/", {}, format="json").status_code == 200
    assert Skip.objects.get().reason == ""
    client.force_login(admin_user)
    html = client.get(reverse("admin:annotation_skip_changelist")).content.decode()
    assert "(no reason given)" in html


def test_it_lists_my_skips_and_undoes_one(browser, annotator, campaign, items):
    from annotation.models import Skip

    item = leased_item(browser, campaign)
    assert skip(browser, item, reason="not my language").status_code == 200
    mine_url = reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
    html = browser.get(mine_url).content.decode()
    assert '<h2 id="skipped">Skipped</h2>' in html
    assert item.external_id in html
    assert "The responses are not in my language" in html  # the reason as it was offered, not its stored key
    undo_url = reverse("annotation:unskip", kwargs={"item_id": item.id})
    assert f'action="{undo_url}"' in html

    response = browser.post(undo_url)
    assert response.status_code == 302 and response["Location"] == mine_url
    assert not Skip.objects.exists()
    html = browser.get(mine_url).content.decode()
    assert "can be offered to you again" in html
    assert 'id="skipped"' not in html
    # Available again: finishing every other item ends with this one.
    offered = set()
    response = browser.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX)
    while found := re.search(r'<form id="judgment-form"[^>]*data-item="(\d+)"', response.content.decode(), re.S):
        offered.add(int(found.group(1)))
        current = next(i for i in items if i.id == int(found.group(1)))
        response = browser.post(reverse("annotation:submit", kwargs={"item_id": current.id}),
                                {**{f"rank_{k}": v for k, v in ranks_for(current).items()},
                                 "idempotency_key": new_key()}, **HTMX)
    assert item.id in offered
    assert browser.post(undo_url).status_code == 404  # nothing left to undo


def test_it_refuses_to_undo_someone_elses_skip(client, annotator, other_annotator, campaign, items):
    from annotation.models import Skip

    Skip.objects.create(item=items[0], annotator=other_annotator, reason="offensive")
    client.force_login(annotator)
    assert client.post(reverse("annotation:unskip", kwargs={"item_id": items[0].id})).status_code == 404
    assert Skip.objects.count() == 1


# --- revise: the progress row with its numbers, and a confirmation --------------------------------------------------


def test_it_shows_the_progress_numbers_on_the_revise_page_and_confirms_a_revision(browser, annotator, campaign,
                                                                                   items):
    from annotation.services.judgments import judgment_submit

    item = items[0]
    judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    html = browser.get(reverse("annotation:revise", kwargs={"item_id": item.id})).content.decode()
    assert "1 done · 4 left" in html
    assert '<span class="small">10.0%</span>' in html  # 1 of 5 items × k = 2 judgments
    assert 'value="20.0"' in html  # the annotator's own bar: 1 of 5

    response = browser.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
                            {**{f"rank_{k}": v for k, v in ranks_for(item, [3, 2, 1]).items()}, "return": "mine",
                             "idempotency_key": new_key()}, **HTMX)
    assert response["HX-Redirect"] == reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
    html = browser.get(response["HX-Redirect"]).content.decode()
    assert "Revision saved." in html


# --- the judgment admin: filters of the languages judged, ranks as a table ------------------------------------------


def test_the_judgment_admin_filters_only_by_languages_that_were_judged(client, admin_user, annotator, campaign,
                                                                       items):
    from annotation.models import Language
    from annotation.services.judgments import judgment_submit

    assert Language.objects.count() > 100
    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    client.force_login(admin_user)
    url = reverse("admin:annotation_judgment_changelist")
    html = client.get(url).content.decode()
    language_links = re.findall(r'href="\?(?:response|prompt)_language=(\w+)"', html)
    assert sorted(language_links) == ["sw", "ta"]  # one per filter: the items' sw→ta
    assert len(re.findall(r'href="\?item__(?:response|prompt)_language', html)) == 0
    assert "Kiswahili" in html  # named, not a bare code
    filtered = client.get(url, {"response_language": "ta"}).content.decode()
    assert items[0].external_id in filtered
    assert items[0].external_id not in client.get(url, {"response_language": "ar"}).content.decode()


def test_the_judgment_admin_shows_the_ranking_as_a_table_with_letters_and_texts(client, admin_user, annotator,
                                                                                campaign, items):
    from annotation.models import Judgment
    from annotation.services.judgments import judgment_submit

    item = items[0]
    order = display_order(item, annotator)
    ranks = {response_id: rank for rank, response_id in enumerate(order, start=1)}
    judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks, flags={order[2]: ["wrong_language"]},
                    idempotency_key=new_key())
    client.force_login(admin_user)
    html = client.get(reverse("admin:annotation_judgment_change",
                              args=[Judgment.objects.get().id])).content.decode()
    table = re.search(r'<table class="judgment-ranking">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><td>(\w)</td><td>(\d)</td><td>([^<]*)</td><td[^>]*>([^<]*)</td>", table)
    responses = {str(r.id): r for r in item.responses.all()}
    assert [(letter, rank) for letter, rank, _flags, _text in rows] == [("A", "1"), ("B", "2"), ("C", "3")]
    assert rows[2][2] == "wrong_language"
    assert [text for *_rest, text in rows] == [responses[response_id].text[:160] for response_id in order]
    assert f'"{order[0]}": 1' not in html  # no JSON keyed by ids


# --- the Arabic interface: languages named in Arabic, percentages with a point -------------------------------------


def test_the_arabic_interface_names_english_in_arabic_and_writes_percentages_with_a_point(browser, annotator,
                                                                                            campaign, items):
    from django.conf import settings

    from annotation.services.judgments import judgment_submit

    item = items[0]
    judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "ar"
    html = browser.get(reverse("annotation:revise", kwargs={"item_id": item.id})).content.decode()
    assert 'lang="ar"' in html
    assert "English (الإنجليزيّة)" in html  # the pivot's label: its own name, then the name in the interface language
    assert '<span class="small">10.0%</span>' in html and "10,0" not in html
    assert 'value="20.0"' in html and 'value="10.0"' in html  # the bars' values are numbers, not localized text
    home = browser.get(reverse("home")).content.decode()
    assert "10,0" not in home and "10.0%" in home


# --- the evaluation comparison: scripts by name -----------------------------------------------------------------


def test_the_comparison_page_names_the_scripts_in_its_filter(browser):
    html = browser.get(reverse("evaluation:compare")).content.decode()
    select = re.search(r'<select name="script"[^>]*>(.*?)</select>', html, re.S).group(1)
    options = dict(re.findall(r'<option value="(\w+)"[^>]*>([^<]*)</option>', select))
    assert options["Latn"] == "Latin (Latn)"
    assert options["Deva"] == "Devanagari (Deva)"
    assert options["Arab"] == "Arabic (Arab)"
    assert all(label != code for code, label in options.items())  # every script of our languages has its name
