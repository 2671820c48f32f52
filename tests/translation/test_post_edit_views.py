"""The post-editing page through Django's test client (templates/annotation/_post_edit.html): the source beside a
textarea per field in the right language and direction, escaped; the three verdicts posted as the buttons send them;
a refused edit shown again with what was typed; revising from My judgments."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from annotation.models import Item, Judgment
from annotation.services.assignment import lease_next
from tests.translation.post_edit_world import make_job, make_set
from translation.models import Translation
from translation.services.post_edit import post_edit_campaign_create

HTMX = {"HTTP_HX_REQUEST": "true"}
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
ROWS = [{"id": f"row{index}", "instruction": f"Explain thing {index}.", "input": "",
         "output": f"Thing {index} is simple."} for index in range(2)]


def arabic_text(row, language, name):
    return {"instruction": f"اشرح الشيء {row.index}.", "output": f"الشيء {row.index} بسيط. {HOSTILE}"}[name]


@pytest.fixture
def campaign(db):
    job = make_job(make_set(ROWS), languages=["ar"], quality=lambda row, language: 0.2, text=arabic_text)
    return post_edit_campaign_create(job=job, campaign_name="Page post-edits")


@pytest.fixture
def arabic(make_annotator):
    return make_annotator("arabic-page", ["ar"], ["en"])


@pytest.fixture
def page(client, arabic):
    client.force_login(arabic)
    return client


def shown(html: str) -> Item | None:
    found = re.search(r'<form id="post-edit-form"[^>]*data-item="(\d+)"', html, re.S)
    return Item.objects.get(pk=int(found.group(1))) if found else None


def textareas(html: str) -> dict[str, str]:
    """{response id: the textarea's text as the browser reads it (the first line break after the tag dropped)}."""
    return {response_id: unescape(text.removeprefix("\n"))
            for response_id, text in re.findall(r'<textarea id="edit-(\d+)"[^>]*>(.*?)</textarea>', html, re.S)}


def responses_by_field(item) -> dict[str, str]:
    return {response.metadata["field"]: str(response.pk) for response in item.responses.all()}


def next_html(page, campaign) -> str:
    response = page.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def form_body(item, html: str, verdict: str, **changes) -> dict:
    """What the browser posts: every textarea, the hidden fields, and the pressed button's verdict."""
    body = {f"edit_{response_id}": text for response_id, text in textareas(html).items()}
    body.update({f"edit_{responses_by_field(item)[field]}": text for field, text in changes.items()})
    body["idempotency_key"] = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    body["verdict"] = verdict
    return body


def test_the_page_shows_each_source_beside_its_translation_in_its_direction(page, campaign):
    annotate = page.get(reverse("annotation:annotate", kwargs={"campaign_id": campaign.id})).content.decode()
    assert "Alt</kbd>+<kbd>A</kbd>" in annotate and "accept the machine translation as it is" in annotate
    assert "give the selected response this rank" not in annotate
    html = next_html(page, campaign)
    item = shown(html)
    assert item is not None and 'id="judgment-form"' not in html
    ids = responses_by_field(item)
    for field in ("instruction", "output"):
        tag = re.search(rf'<textarea id="edit-{ids[field]}"[^>]*>', html).group(0)
        assert 'lang="ar"' in tag and 'dir="rtl"' in tag and f'name="edit_{ids[field]}"' in tag
    assert re.search(r'<div class="text source-text" lang="en" dir="ltr"[^>]*>Explain thing \d\.</div>', html)
    assert textareas(html)[ids["output"]] == f"الشيء {item.external_id[3]} بسيط. {HOSTILE}"
    # Untrusted text is escaped, never markup.
    assert "<script>window.__xss" not in html and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    for verdict, label in (("accepted", "Accept as is"), ("edited", "Save edits"), ("unusable", "Unusable")):
        assert re.search(rf'<button type="submit" name="verdict" value="{verdict}"[^>]*>{label}', html)
    assert 'name="reason"' in html  # the skip form, as for rankings


def test_save_edits_stores_the_edit_and_brings_the_next_item(page, campaign, arabic):
    html = next_html(page, campaign)
    item = shown(html)
    ids = responses_by_field(item)
    response = page.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
                         form_body(item, html, "edited", output="الشيء بسيط جدا.\r\nسطر ثان."), **HTMX)
    assert response.status_code == 200
    after = response.content.decode()
    assert "Saved. Here is the next item." in after and shown(after) not in (None, item)
    judgment = Judgment.objects.get(annotator=arabic, item=item)
    assert (judgment.verdict, judgment.edits) == ("edited", {ids["output"]: "الشيء بسيط جدا.\nسطر ثان."})
    translation = Translation.objects.get(post_edit_item=item)
    assert translation.fields["output"] == "الشيء بسيط جدا.\nسطر ثان." and translation.post_edit == "edited"
    assert translation.fields["instruction"] == translation.machine_fields["instruction"]  # the untouched field


@pytest.mark.parametrize("verdict", ["accepted", "unusable"])
def test_accept_and_unusable_ignore_the_text_boxes(page, campaign, verdict):
    html = next_html(page, campaign)
    item = shown(html)
    page.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
              form_body(item, html, verdict, output="typed but not meant"), **HTMX)
    translation = Translation.objects.get(post_edit_item=item)
    assert translation.post_edit == verdict and "typed but not meant" not in translation.fields["output"]


def test_a_refused_edit_comes_back_with_what_was_typed(page, campaign):
    html = next_html(page, campaign)
    item = shown(html)
    ids = responses_by_field(item)
    response = page.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
                         form_body(item, html, "edited", instruction="   ", output="my careful edit"), **HTMX)
    assert response.status_code == 422
    again = response.content.decode()
    assert shown(again) == item
    assert textareas(again)[ids["output"]] == "my careful edit"
    assert re.search(rf'<textarea id="edit-{ids["instruction"]}"[^>]*aria-invalid="true"', again)
    assert 'role="alert"' in again and "Instruction: This text is empty" in again
    assert Translation.objects.get(post_edit_item=item).post_edit == "pending"
    assert not Judgment.objects.exists()
    # No verdict at all (a form posted without a button): refused the same way.
    body = form_body(item, html, "edited")
    del body["verdict"]
    response = page.post(reverse("annotation:submit", kwargs={"item_id": item.id}), body, **HTMX)
    assert response.status_code == 422 and "Choose Accept as is, Save edits or Unusable." in response.content.decode()


def test_revising_from_my_judgments_shows_the_saved_edit_and_replaces_it(page, campaign, arabic):
    html = next_html(page, campaign)
    item = shown(html)
    ids = responses_by_field(item)
    page.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
              form_body(item, html, "edited", output="first edit"), **HTMX)
    mine = page.get(reverse("annotation:mine", kwargs={"campaign_id": campaign.id})).content.decode()
    assert "Verdict" in mine and "edited" in mine
    revise = page.get(reverse("annotation:revise", kwargs={"item_id": item.id})).content.decode()
    assert textareas(revise)[ids["output"]] == "first edit"
    assert 'name="return" value="mine"' in revise
    body = form_body(item, revise, "edited", output="second edit")
    body["return"] = "mine"
    response = page.post(reverse("annotation:submit", kwargs={"item_id": item.id}), body)
    assert response.status_code == 302 and response["Location"].endswith(f"/campaigns/{campaign.id}/mine/")
    judgment = Judgment.objects.get(annotator=arabic, item=item)
    assert judgment.revision == 2 and judgment.edits == {ids["output"]: "second edit"}
    assert Translation.objects.get(post_edit_item=item).fields["output"] == "second edit"


def test_without_javascript_the_page_works_as_a_plain_form(page, campaign):
    response = page.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}))
    html = response.content.decode()
    item = shown(html)
    assert "<html" in html and item is not None
    response = page.post(reverse("annotation:submit", kwargs={"item_id": item.id}), form_body(item, html, "accepted"))
    assert response.status_code == 200 and "<html" in response.content.decode()
    assert Translation.objects.get(post_edit_item=item).post_edit == "accepted"
    assert lease_next(campaign=campaign, annotator=response.wsgi_request.user) is not None
