"""The annotator's htmx pages, through Django's test client: home, annotate, next, submit, skip, mine, revise."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Item, Judgment, JudgmentSubmission, Lease, Skip
from annotation.services.assignment import lease_next
from annotation.services.judgments import judgment_submit
from tests.conftest import item_line, new_key, ranks_for

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser(client, annotator):
    client.force_login(annotator)
    return client


def next_url(campaign) -> str:
    return reverse("annotation:next", kwargs={"campaign_id": campaign.id})


def submit_url(item) -> str:
    return reverse("annotation:submit", kwargs={"item_id": item.id})


def skip_url(item) -> str:
    return reverse("annotation:skip", kwargs={"item_id": item.id})


def shown_item(response) -> Item | None:
    """The item whose judgment form the page holds, or None (the 'nothing left' card)."""
    found = re.search(r'<form id="judgment-form"[^>]*data-item="(\d+)"', response.content.decode(), re.S)
    return Item.objects.get(pk=int(found.group(1))) if found else None


def rank_fields(item, order: list[int] | None = None) -> dict[str, int]:
    return {f"rank_{key}": value for key, value in ranks_for(item, order).items()}


def selected_ranks(html: str) -> dict[str, str | None]:
    """{response id: the selected option of its rank <select>, or None}."""
    result = {}
    for response_id, options in re.findall(r'<select name="rank_(\d+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="(\d+)" selected>', options)
        result[response_id] = chosen.group(1) if chosen else None
    return result


# --- home and annotate ------------------------------------------------------------------------------------------


def test_it_lists_campaigns_with_progress(browser, annotator, campaign, items):
    response = browser.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert campaign.name in html
    assert "0 of 10 judgments · 5 items" in html  # 5 items × k = 2
    assert "2 judgments per item" in html
    assert "0 done · 5 open for you" in html
    assert reverse("annotation:annotate", kwargs={"campaign_id": campaign.id}) in html

    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key())
    html = browser.get(reverse("home")).content.decode()
    assert "1 of 10 judgments · 5 items" in html
    assert "1 done · 4 open for you" in html
    assert 'value="10.0"' in html  # the campaign's progress bar: 1 of 10


def test_it_counts_in_the_singular_for_one(browser, admin_user):
    from annotation.services.campaigns import campaign_create

    campaign_create(name="Single", created_by=admin_user, overlap=1)
    assert "1 judgment per item" in browser.get(reverse("home")).content.decode()


def test_it_sends_a_login_to_the_login_page(client, campaign):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_renders_the_guidelines_as_sanitised_markdown(browser, campaign):
    campaign.guidelines = f"Rank **carefully**.\n\n{SCRIPT}\n\n[bad](javascript:alert(1)) [good](https://example.org)"
    campaign.save()
    response = browser.get(reverse("annotation:annotate", kwargs={"campaign_id": campaign.id}))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>carefully</strong>" in html
    assert ESCAPED_SCRIPT in html
    assert SCRIPT not in html
    assert "javascript:" not in html
    assert 'href="https://example.org"' in html
    # The workspace loads itself with a POST, never a state-changing GET.
    assert f'hx-post="{next_url(campaign)}"' in html


# --- next -------------------------------------------------------------------------------------------------------


def test_it_marks_every_text_with_its_language_and_direction(client, make_annotator, campaign, import_items):
    import_items(campaign, [item_line("sw-ar", response_lang="ar", responses=["جواب أول", "جواب ثان"])])
    client.force_login(make_annotator("arabic2", ["ar"], ["sw"]))
    response = client.post(next_url(campaign), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    item = Item.objects.get(external_id="sw-ar")
    assert shown_item(response) == item
    # Direction follows each text (an English sentence in an Arabic slot stays left to right); lang keeps the
    # declared language.
    assert html.count('lang="sw" dir="auto"') == 1  # the prompt
    assert html.count('lang="en" dir="auto"') == 1  # the pivot
    assert html.count('lang="ar" dir="auto"') == 2  # both responses
    assert "جواب أول" in html
    response_ids = {str(pk) for pk in item.responses.values_list("id", flat=True)}
    assert set(selected_ranks(html)) == response_ids
    for response_id in response_ids:
        select = re.search(rf'<select name="rank_{response_id}"[^>]*>(.*?)</select>', html, re.S).group(1)
        assert re.findall(r'<option value="(\d*)"', select) == ["", "1", "2"]
    assert Lease.objects.filter(item=item).count() == 1


def test_it_shows_the_done_card_when_nothing_is_left(browser, campaign):
    response = browser.post(next_url(campaign), **HTMX)
    assert response.status_code == 200
    assert shown_item(response) is None
    assert "Nothing left for you right now" in response.content.decode()


def test_it_gives_htmx_the_partial_and_a_plain_post_the_whole_page(browser, campaign, items):
    partial = browser.post(next_url(campaign), **HTMX).content.decode()
    assert 'id="judgment-form"' in partial
    assert "<!doctype html>" not in partial
    assert "<body" not in partial
    page = browser.post(next_url(campaign)).content.decode()
    assert page.startswith("<!doctype html>")
    assert 'id="judgment-form"' in page
    assert '<div id="workspace">' in page


# --- submit -----------------------------------------------------------------------------------------------------


def test_it_stores_the_judgment_and_shows_the_next_item(browser, annotator, campaign, items):
    item = shown_item(browser.post(next_url(campaign), **HTMX))
    ranks = rank_fields(item, [2, 1, 3])
    first, second = list(ranks_for(item))[:2]
    response = browser.post(
        submit_url(item),
        {**ranks, f"flag_{first}": ["wrong_language", "garbled"], f"flag_{second}": "incomplete",
         "comment": "B reads best", "idempotency_key": new_key()},
        **HTMX,
    )
    assert response.status_code == 200
    judgment = Judgment.objects.get(annotator=annotator)
    assert judgment.item == item
    assert judgment.ranks == ranks_for(item, [2, 1, 3])
    assert judgment.flags == {first: ["garbled", "wrong_language"], second: ["incomplete"]}
    assert judgment.comment == "B reads best"
    following = shown_item(response)
    assert following is not None and following != item
    assert "Saved. Here is the next item." in response.content.decode()
    assert Lease.objects.get(annotator=annotator).item == following


def test_it_refuses_a_ranking_with_a_missing_rank(browser, annotator, campaign, items):
    item = shown_item(browser.post(next_url(campaign), **HTMX))
    ranks = rank_fields(item)
    missing = next(iter(ranks))
    del ranks[missing]
    response = browser.post(submit_url(item), {**ranks, "comment": "kept", "idempotency_key": new_key()}, **HTMX)
    assert response.status_code == 422
    assert Judgment.objects.count() == 0
    assert JudgmentSubmission.objects.count() == 0
    html = response.content.decode()
    assert "Give this response a rank." in html
    assert shown_item(response) == item  # the same item again, with what was sent
    assert ">kept</textarea>" in html
    shown = selected_ranks(html)
    assert shown[missing.removeprefix("rank_")] is None
    assert all(shown[key.removeprefix("rank_")] == str(value) for key, value in ranks.items())
    assert Lease.objects.filter(annotator=annotator, item=item).exists()  # the lease is kept


def test_it_refuses_a_rank_outside_the_list(browser, campaign, items):
    item = shown_item(browser.post(next_url(campaign), **HTMX))
    response = browser.post(submit_url(item), {**rank_fields(item, [1, 2, 7]), "idempotency_key": new_key()},
                            **HTMX)
    assert response.status_code == 422
    assert "Choose a rank from the list." in response.content.decode()
    assert Judgment.objects.count() == 0


def test_it_does_not_store_twice_on_a_double_submit(browser, campaign, items):
    item = shown_item(browser.post(next_url(campaign), **HTMX))
    form = {**rank_fields(item), "idempotency_key": new_key()}
    assert browser.post(submit_url(item), form, **HTMX).status_code == 200
    assert browser.post(submit_url(item), form, **HTMX).status_code == 200
    assert Judgment.objects.count() == 1
    assert Judgment.objects.get().revision == 1


# --- skip -------------------------------------------------------------------------------------------------------


def test_it_never_offers_a_skipped_item_again(browser, annotator, campaign, items):
    skipped = shown_item(browser.post(next_url(campaign), **HTMX))
    response = browser.post(skip_url(skipped), {"reason": "not my language"}, **HTMX)
    assert response.status_code == 200
    assert Skip.objects.get(annotator=annotator).item == skipped
    assert Skip.objects.get().reason == "not my language"
    offered = []
    while (item := shown_item(response)) is not None:
        offered.append(item.id)
        response = browser.post(submit_url(item), {**rank_fields(item), "idempotency_key": new_key()}, **HTMX)
        assert response.status_code == 200
    assert skipped.id not in offered
    assert sorted(offered) == sorted(item.id for item in items if item != skipped)
    assert "Nothing left for you right now" in response.content.decode()


# --- mine and revise --------------------------------------------------------------------------------------------


def test_it_lists_my_judgments_and_prefills_a_revision(browser, annotator, other_annotator, campaign, items):
    mine_item, theirs = items[0], items[1]
    judgment_submit(annotator=annotator, item_id=mine_item.id, ranks=ranks_for(mine_item, [3, 1, 2]),
                    idempotency_key=new_key())
    judgment_submit(annotator=other_annotator, item_id=theirs.id, ranks=ranks_for(theirs),
                    idempotency_key=new_key())
    html = browser.get(reverse("annotation:mine", kwargs={"campaign_id": campaign.id})).content.decode()
    assert mine_item.external_id in html
    assert theirs.external_id not in html
    revise_url = reverse("annotation:revise", kwargs={"item_id": mine_item.id})
    assert f'href="{revise_url}"' in html

    response = browser.get(revise_url)
    assert response.status_code == 200
    html = response.content.decode()
    assert selected_ranks(html) == {key: str(value) for key, value in ranks_for(mine_item, [3, 1, 2]).items()}
    assert "Save revision" in html
    assert 'name="return" value="mine"' in html
    assert 'class="skip"' not in html  # a judged item cannot be skipped


def test_it_stores_a_revision(browser, annotator, campaign, items):
    item = items[0]
    judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    response = browser.post(submit_url(item), {**rank_fields(item, [3, 2, 1]), "comment": "changed my mind",
                                               "return": "mine", "idempotency_key": new_key()})
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
    judgment = Judgment.objects.get()
    assert judgment.ranks == ranks_for(item, [3, 2, 1])
    assert judgment.comment == "changed my mind"
    assert judgment.revision == 2
    item.refresh_from_db()
    assert item.judgment_count == 1

    response = browser.post(submit_url(item), {**rank_fields(item), "return": "mine", "idempotency_key": new_key()},
                            **HTMX)
    assert response["HX-Redirect"] == reverse("annotation:mine", kwargs={"campaign_id": campaign.id})
    assert Judgment.objects.get().revision == 3


def test_it_says_404_when_revising_an_item_i_did_not_judge(browser, items):
    assert browser.get(reverse("annotation:revise", kwargs={"item_id": items[0].id})).status_code == 404


# --- CSRF and methods -------------------------------------------------------------------------------------------


@pytest.fixture
def csrf_browser(annotator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    return client


def _state() -> tuple:
    return (
        list(Lease.objects.values_list("item_id", "annotator_id", "expires_at")),
        list(Judgment.objects.values_list("id", "ranks", "revision")),
        Skip.objects.count(),
        list(Item.objects.values_list("id", "judgment_count", "lease_count")),
    )


def test_it_refuses_posts_without_a_csrf_token(csrf_browser, annotator, campaign, items):
    lease = lease_next(campaign=campaign, annotator=annotator)
    leased = Item.objects.get(pk=lease.item_id)
    before = _state()
    assert csrf_browser.post(next_url(campaign), **HTMX).status_code == 403
    assert csrf_browser.post(submit_url(leased), {**rank_fields(leased), "idempotency_key": new_key()},
                             **HTMX).status_code == 403
    assert csrf_browser.post(skip_url(leased), {"reason": "other"}, **HTMX).status_code == 403
    assert _state() == before


def test_it_accepts_the_csrf_token_the_page_hands_to_htmx(csrf_browser, annotator, campaign, items):
    page = csrf_browser.get(reverse("annotation:annotate", kwargs={"campaign_id": campaign.id})).content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = csrf_browser.post(next_url(campaign), HTTP_X_CSRFTOKEN=token, **HTMX)
    assert response.status_code == 200
    assert shown_item(response) is not None


@pytest.mark.parametrize("name", ["next", "submit", "skip"])
def test_it_changes_nothing_on_get(browser, annotator, campaign, items, name):
    lease = lease_next(campaign=campaign, annotator=annotator)
    kwargs = {"campaign_id": campaign.id} if name == "next" else {"item_id": lease.item_id}
    before = _state()
    response = browser.get(reverse(f"annotation:{name}", kwargs=kwargs), {"reason": "x", "idempotency_key": "k"})
    assert response.status_code == 405
    assert _state() == before


# --- escaping ---------------------------------------------------------------------------------------------------


def test_it_escapes_html_in_prompts_responses_and_comments(browser, annotator, campaign, import_items):
    import_items(campaign, [item_line("xss", prompt=f"Explain {SCRIPT}", responses=[SCRIPT, f"**ok** {SCRIPT}"])])
    response = browser.post(next_url(campaign), **HTMX)
    html = response.content.decode()
    item = shown_item(response)
    assert item.external_id == "xss"
    assert SCRIPT not in html
    assert html.count(ESCAPED_SCRIPT) == 3
    assert "<strong>ok</strong>" in html

    comment = f"I saw {SCRIPT}"
    # Sent with a rank missing, the comment comes back in the form...
    partial = rank_fields(item)
    partial.popitem()
    html = browser.post(submit_url(item), {**partial, "comment": comment, "idempotency_key": new_key()},
                        **HTMX).content.decode()
    assert SCRIPT not in html
    assert f"I saw {ESCAPED_SCRIPT}</textarea>" in html
    # ...and once stored, on the revision page, and the prompt on the list of my judgments.
    browser.post(submit_url(item), {**rank_fields(item), "comment": comment, "idempotency_key": new_key()})
    assert Judgment.objects.get().comment == comment
    html = browser.get(reverse("annotation:revise", kwargs={"item_id": item.id})).content.decode()
    assert SCRIPT not in html
    assert f"I saw {ESCAPED_SCRIPT}</textarea>" in html
    html = browser.get(reverse("annotation:mine", kwargs={"campaign_id": campaign.id})).content.decode()
    assert SCRIPT not in html
    assert "Explain &lt;script&gt;" in html
