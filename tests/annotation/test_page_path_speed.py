"""Issue 16, the annotators' page path: the signed-in user cached as an API token's is (crossfeed/auth.py), with
Django's session checks kept, and the invariant markup of _item.html rendered once per interface language
({% chrome %}, annotation/templatetags/crossfeed.py), the same bytes as without it."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.db import connection
from django.template import TemplateSyntaxError, engines
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from annotation import views
from annotation.models import Item
from annotation.services.assignment import lease_next
from annotation.services.judgments import judgment_submit
from tests.conftest import PASSWORD, item_line, new_key, ranks_for

HOME = "/"


def user_reads(queries) -> int:
    """The reads of one user row by its primary key (what ModelBackend.get_user runs)."""
    return sum(1 for query in queries if re.search(r'FROM "auth_user" WHERE "auth_user"\."id" = ', query["sql"]))


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_signed_in(client: Client) -> bool:
    """The home page answers a signed-in person; anyone else is sent to the login page."""
    response = client.get(HOME)
    assert response.status_code in (200, 302), response.status_code
    return response.status_code == 200


# --- the signed-in user, cached ------------------------------------------------------------------------------------


def test_the_user_row_is_read_once_per_period_not_on_every_request(annotator):
    client = signed_in(annotator)
    with CaptureQueriesContext(connection) as first:
        assert is_signed_in(client)
    with CaptureQueriesContext(connection) as second:
        assert is_signed_in(client)
    assert user_reads(first.captured_queries) == 1
    assert user_reads(second.captured_queries) == 0


def test_without_a_period_the_user_is_read_on_every_request(settings, annotator):
    settings.TOKEN_CACHE_SECONDS = 0
    client = signed_in(annotator)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert is_signed_in(client)
        assert user_reads(queries.captured_queries) == 1


def test_a_deactivated_annotator_is_refused_at_once_by_the_process_that_saved_it(annotator):
    client = signed_in(annotator)
    assert is_signed_in(client)  # cached now
    annotator.is_active = False
    annotator.save()
    assert not is_signed_in(client)


def test_a_deactivation_made_elsewhere_takes_effect_within_the_period(settings, annotator):
    """A bulk UPDATE (or another process's save) sends this process no signal: the documented bound holds."""
    settings.TOKEN_CACHE_SECONDS = 1
    client = signed_in(annotator)
    assert is_signed_in(client)
    get_user_model().objects.filter(pk=annotator.pk).update(is_active=False)
    time.sleep(1.2)  # past TOKEN_CACHE_SECONDS, not a timing assertion
    assert not is_signed_in(client)
    assert not is_signed_in(client)  # None is never cached


def test_a_deactivation_made_elsewhere_is_seen_at_once_without_a_period(settings, annotator):
    settings.TOKEN_CACHE_SECONDS = 0
    client = signed_in(annotator)
    assert is_signed_in(client)
    get_user_model().objects.filter(pk=annotator.pk).update(is_active=False)
    assert not is_signed_in(client)


def test_a_password_change_ends_the_other_sessions(annotator):
    mine, other = signed_in(annotator), signed_in(annotator)
    assert is_signed_in(mine) and is_signed_in(other)  # the user is cached with the old password
    annotator.set_password("a new password, chosen after a leak")
    annotator.save()
    assert not is_signed_in(other)
    # Django flushed that session: it stays signed out even once the new password is cached.
    assert not is_signed_in(other)


def test_the_session_of_a_password_changed_elsewhere_is_checked_on_a_fresh_read(annotator):
    """The person changed their password in another process (update_session_auth_hash there): this process still
    caches the old row, whose hash does not match their session. They stay signed in."""
    client = signed_in(annotator)
    assert is_signed_in(client)
    get_user_model().objects.filter(pk=annotator.pk).update(password=make_password("changed in another process"))
    session = client.session
    session[HASH_SESSION_KEY] = get_user_model().objects.get(pk=annotator.pk).get_session_auth_hash()
    session.save()
    assert is_signed_in(client)
    assert is_signed_in(client)


def test_a_session_with_a_wrong_hash_is_flushed_as_django_flushes_it(annotator):
    client = signed_in(annotator)
    assert is_signed_in(client)
    session = client.session
    session[HASH_SESSION_KEY] = "0" * 64
    session.save()
    assert not is_signed_in(client)


def test_logging_out_ends_the_session_at_once(annotator):
    client = signed_in(annotator)
    assert is_signed_in(client)
    client.post(reverse("logout"))
    assert not is_signed_in(client)


def test_a_deleted_user_is_signed_out_at_once(annotator):
    client = signed_in(annotator)
    assert is_signed_in(client)
    annotator.delete()
    assert not is_signed_in(client)


def test_a_permission_given_applies_on_the_next_request(campaign, annotator):
    """Permissions are never part of the cached row: a reviewer's right works at once."""
    client = signed_in(annotator)
    page = reverse("annotation:disagreements", kwargs={"campaign_id": campaign.id})
    assert client.get(page).status_code == 403  # and the user is cached now
    annotator.user_permissions.add(Permission.objects.get(codename="add_adjudication"))
    assert client.get(page).status_code == 200


def test_staff_rights_taken_away_apply_on_the_next_request(admin_user):
    client = signed_in(admin_user)
    assert client.get(reverse("admin:index")).status_code == 200
    admin_user.is_staff = admin_user.is_superuser = False
    admin_user.save()
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_api_token_path_still_caches_its_user(annotator):
    from crossfeed.tokens.services import token_issue

    client = Client(HTTP_AUTHORIZATION=f"Token {token_issue(user=annotator)}")
    with CaptureQueriesContext(connection) as first:
        assert client.get(reverse("api-campaigns")).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get(reverse("api-campaigns")).status_code == 200
    assert len(second.captured_queries) < len(first.captured_queries)


# --- {% chrome %}: the same markup, in the right language ----------------------------------------------------------

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


# What {% ranking_strip %} replaced in _item.html.
STRIP_LOOP = ('{% for response in payload.responses %}<li draggable="true" data-response="{{ response.id }}">'
              '{{ forloop.counter0|letter }}</li>{% endfor %}')


def as_plain_template(source: str) -> str:
    """_item.html as Django's own tags write it: no {% chrome %} blocks, {% url %} for {% item_url %}, the ranking
    strip's loop for {% ranking_strip %}."""
    return (source.replace("{% chrome %}", "").replace("{% endchrome %}", "").replace("{% item_url ", "{% url ")
            .replace("{% ranking_strip payload.responses %}", STRIP_LOOP))


def item_contexts(annotator, campaign) -> list[tuple]:
    """(request, context) of _item.html in the states the views render it in: a first judgment, a revision, a
    refused submit with errors, a refused skip, with and without a pivot, a qualification item, no lease time."""
    from annotation.models import Judgment

    request = RequestFactory().post("/")
    request.user = annotator
    request.htmx = True
    request.session = {}
    contexts = []
    for item in Item.objects.filter(campaign=campaign).order_by("id"):
        item = views._get_item_for_annotator(request, item.id)
        mine, progress = views.progress_of(annotator, campaign)
        base = {"campaign": campaign, "mine": mine, "progress": progress}
        judgment = Judgment.objects.filter(item=item, annotator=annotator).first()
        contexts.append((request, {**base, "notice": "Saved. Here is the next item.",
                                   **views._item_context(request, item, timezone.now())}))
        contexts.append((request, {**base, **views._item_context(request, item, None)}))
        ids = list(item.responses.order_by("position").values_list("id", flat=True))
        contexts.append((request, {**base, "skip_error": "Write your reason <here>.",
                                   "skip_posted": {"reason": "other"},
                                   **views._item_context(request, item, timezone.now(), errors={
                                       f"rank_{ids[0]}": ["Give this response a rank."],
                                       "__all__": ["Please fix the marked fields."]},
                                       posted={"ranks": {str(ids[1]): 1}, "comment": "<b>mine</b>"})}))
        if judgment is not None:
            contexts.append((request, {**base, "revising": True,
                                       **views._item_context(request, item, None, judgment=judgment)}))
    return contexts


@pytest.fixture
def shown_items(campaign, import_items, annotator):
    import_items(campaign, [item_line("with-pivot"), item_line("no-pivot", pivot=False),
                            item_line("four", n=4)])
    Item.objects.filter(external_id="no-pivot").update(kind=Item.Kind.QUALIFICATION)
    lease = lease_next(campaign=campaign, annotator=annotator)
    judgment_submit(annotator=annotator, item_id=lease.item_id, ranks=ranks_for(Item.objects.get(pk=lease.item_id)),
                    idempotency_key=new_key(), comment="a comment with <markup> & more")
    return item_contexts(annotator, campaign)


def test_the_item_partial_is_the_markup_of_djangos_own_tags_in_every_language(settings, shown_items):
    engine = engines["django"]
    source = engine.engine.find_template("annotation/_item.html")[0].source
    assert "{% chrome %}" in source and "{% item_url " in source and "{% ranking_strip " in source
    plain = engine.from_string(as_plain_template(source))
    english = {}
    # English first, every other language after it, English again: a cache that ignored the language would hand
    # the first language's texts to the others.
    for language in ["en"] + [code for code, _name in settings.LANGUAGES if code != "en"] + ["en"]:
        with translation.override(language):
            for index, (request, context) in enumerate(shown_items):
                cached = CSRF.sub("", render_to_string("annotation/_item.html", context, request))
                assert cached == CSRF.sub("", plain.render(context, request)), (language, index)
                if language == "en":
                    english[index] = cached
                elif language == "fr":
                    assert cached != english[index]  # the French page is French: the comparison means something
    assert len(shown_items) >= 10


def test_chrome_follows_the_interface_language_of_each_request(campaign, items, annotator):
    client = signed_in(annotator)
    next_url = reverse("annotation:next", kwargs={"campaign_id": campaign.id})
    english = client.post(next_url, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    french = client.post(next_url, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    again = client.post(next_url, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    with translation.override("fr"):
        skip_in_french = translation.gettext("Skip with a reason")
    assert skip_in_french != "Skip with a reason"
    assert "Skip with a reason" in english and skip_in_french not in english
    assert skip_in_french in french and "Skip with a reason" not in french
    assert "Skip with a reason" in again


@pytest.mark.parametrize("inside", [
    "{{ value }}",
    "{% translate value %}",
    '{% translate "Skip" as skip %}',
    '{% translate "Skip"|upper %}',
    '{% translate "May" context "month" %}',
    "{% if value %}x{% endif %}",
    "{% csrf_token %}",
])
def test_chrome_refuses_anything_that_depends_on_the_context(inside):
    with pytest.raises(TemplateSyntaxError, match="may hold only markup"):
        engines["django"].from_string("{% load i18n crossfeed %}{% chrome %}<p>" + inside + "</p>{% endchrome %}")


def test_chrome_keeps_markup_and_fixed_translations():
    template = engines["django"].from_string(
        '{% load i18n crossfeed %}{% chrome %}<p title="{% translate "Skip" %}">50%</p>{% endchrome %}')
    for language in ("en", "fr", "en"):
        with translation.override(language):
            assert template.render({}) == f'<p title="{translation.gettext("Skip")}">50%</p>'


def test_item_url_is_what_reverse_gives_under_any_script_prefix():
    from django.urls import set_script_prefix

    from annotation.templatetags.crossfeed import item_url

    try:
        for prefix in ("/", "/crossfeed/", "/"):
            set_script_prefix(prefix)
            for item_id in (1, 42, 10**17 + 3):
                for name in ("annotation:submit", "annotation:skip"):
                    assert item_url(name, item_id) == reverse(name, args=[item_id])
            assert item_url("annotation:skip", 7).startswith(prefix)
    finally:
        set_script_prefix("/")


def test_language_names_follow_the_interface_language():
    from annotation.templatetags.crossfeed import _name_of, language_name

    for language in ("en", "fr", "ar", "en"):
        with translation.override(language):
            assert language_name("sw") == _name_of("sw")
            assert language_name("ta") == _name_of("ta")
    with translation.override("fr"):
        french = language_name("ar")
    assert french != language_name("ar")  # English now: the name was not kept from the French call


def test_signing_in_by_the_form_then_submitting_works(campaign, items, annotator):
    client = Client()
    assert client.post(reverse("login"), {"username": annotator.username, "password": PASSWORD}).status_code == 302
    page = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), HTTP_HX_REQUEST="true")
    item = Item.objects.get(pk=int(re.search(r'data-item="(\d+)"', page.content.decode()).group(1)))
    fields = {f"rank_{key}": value for key, value in ranks_for(item).items()}
    answer = client.post(reverse("annotation:submit", kwargs={"item_id": item.id}),
                         {**fields, "idempotency_key": new_key()}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert item.judgments.filter(annotator=annotator).exists()


def test_a_page_submit_reads_the_judged_item_and_its_responses_once(campaign, items, annotator):
    """The view reads what the submit needs (the key's earlier submission, the item, its response ids) in one
    statement and hands it to judgment_submit: before, the view read the item and the response ids apart and the
    service read all three again. A replayed key still replays."""
    client = signed_in(annotator)
    page = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), HTTP_HX_REQUEST="true")
    item = Item.objects.get(pk=int(re.search(r'data-item="(\d+)"', page.content.decode()).group(1)))
    body = {**{f"rank_{key}": value for key, value in ranks_for(item).items()}, "idempotency_key": new_key()}
    url = reverse("annotation:submit", kwargs={"item_id": item.id})
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, body, HTTP_HX_REQUEST="true").status_code == 200
    reads = [query["sql"] for query in queries.captured_queries
             if "annotation_response" in query["sql"] and re.search(rf"item_id = {item.id}\b", query["sql"])]
    assert len(reads) == 1, reads
    judgment = item.judgments.get(annotator=annotator)
    assert client.post(url, body, HTTP_HX_REQUEST="true").status_code == 200  # the same key again: a replay
    assert list(item.judgments.filter(annotator=annotator)) == [judgment]
    assert judgment.submissions.count() == 1
