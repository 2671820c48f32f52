"""Annotators from a CSV with one-time invitation links: the file's checks (every problem with its line, nothing
created), the creation, the e-mail, the link (once, not after it expired, not after a newer one), the admin page
and the management command."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from annotation.models import AnnotatorProfile, Invitation
from annotation.services.invitations import (
    annotators_invite,
    annotators_parse_csv,
    invitation_send,
    invitation_tokens,
)
from crossfeed.errors import InvalidInput
from crossfeed.tokens.models import APIToken

GOOD = ("\ufeffusername,email,native_languages,reading_languages\n"
        "amina,amina@example.org,sw,en fr\n"
        "\n"
        'kavya,kavya@example.org,"ta;te",eng_Latn\n'
        "li,li@example.org,zh-Hans,\n")
NEW_PASSWORD = "a-new-long-password-42"
User = get_user_model()


def errors_of(content) -> list[tuple[int, str, str]]:
    with pytest.raises(InvalidInput) as refused:
        annotators_parse_csv(content=content)
    return [(error["line"], error["field"], error["message"]) for error in refused.value.errors]


def link_in(message) -> str:
    return re.search(r"https?://\S+/accounts/invitation/\S+/", message.body).group(0)


@pytest.mark.django_db
def test_it_reads_languages_separated_by_spaces_semicolons_and_flores_codes():
    rows = annotators_parse_csv(content=GOOD.encode("utf-8"))
    assert [(row.line, row.username, row.native_languages, row.reading_languages) for row in rows] == [
        (2, "amina", ["sw"], ["en", "fr"]), (4, "kavya", ["ta", "te"], ["en"]), (5, "li", ["zh-Hans"], [])]


@pytest.mark.django_db
def test_it_lists_every_problem_with_its_line_and_creates_nothing(make_annotator):
    make_annotator("taken", ["sw"])
    users_before = User.objects.count()
    content = ("username,email,native_languages,reading_languages\n"
               "amina,amina@example.org,sw,en\n"      # 2: fine
               "Amina,other@example.org,sw,\n"        # 3: the same username as line 2 (case aside)
               "bob,amina@example.org,xx-nowhere,\n"  # 4: e-mail of line 2; unknown language
               "taken,t@example.org,sw,\n"            # 5: an existing user
               "carl,not-an-address,,qq\n"            # 6: bad e-mail, no native language, unknown reading language
               "dan,dan@example.org,sw,en,extra\n")   # 7: one cell too many
    problems = errors_of(content.encode())
    lines = [line for line, _field, _message in problems]
    assert lines == sorted(lines)
    assert {(line, field) for line, field, _message in problems} == {
        (3, "username"), (4, "email"), (4, "native_languages"), (5, "username"), (6, "email"),
        (6, "native_languages"), (6, "reading_languages"), (7, "file")}
    assert any("also on line 2" in message for line, _field, message in problems if line == 3)
    assert any("'xx-nowhere'" in message for line, _field, message in problems if line == 4)
    assert User.objects.count() == users_before
    assert not Invitation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("content, expected", [
    ("username,email\namina,a@example.org\n", (1, "native_languages")),
    ("username,email,native_languages,languages\na,a@example.org,sw,en\n", (1, "languages")),
    ("username,email,native_languages\n", (2, "file")),
    ("", None),
])
def test_it_refuses_a_wrong_header_or_an_empty_file(content, expected):
    if expected is None:
        with pytest.raises(InvalidInput, match="empty"):
            annotators_parse_csv(content=content.encode())
    else:
        assert expected in [(line, field) for line, field, _message in errors_of(content.encode())]


@pytest.mark.django_db
def test_it_refuses_a_file_that_is_not_utf8():
    with pytest.raises(InvalidInput, match="not UTF-8"):
        annotators_parse_csv(content="username,email,native_languages\nzoë,z@example.org,fr\n".encode("latin-1"))


@pytest.mark.django_db
def test_it_creates_everyone_and_mails_each_a_link(admin_user):
    rows = annotators_parse_csv(content=GOOD.encode())
    results = annotators_invite(rows=rows, created_by=admin_user, base_url="https://crossfeed.example.org/")
    assert [(result.username, result.sent) for result in results] == [("amina", True), ("kavya", True),
                                                                      ("li", True)]
    amina = User.objects.get(username="amina")
    assert not amina.has_usable_password()  # nobody can sign in until the link is used
    assert AnnotatorProfile.objects.get(user=amina).language_codes() == (["sw"], ["en", "fr", "sw"])
    assert not APIToken.objects.filter(user__in=User.objects.filter(username__in=["amina", "kavya", "li"])).exists()
    invitation = Invitation.objects.get(user=amina)
    assert invitation.created_by == admin_user and invitation.accepted_at is None
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert [message.to for message in mail.outbox] == [["amina@example.org"], ["kavya@example.org"],
                                                       ["li@example.org"]]
    assert link_in(mail.outbox[0]) == results[0].link
    assert results[0].link.startswith("https://crossfeed.example.org/accounts/invitation/")


@pytest.fixture
def invited(admin_user):
    rows = annotators_parse_csv(content=GOOD.encode())
    annotators_invite(rows=rows, created_by=admin_user, base_url="http://testserver/")
    return User.objects.get(username="amina"), link_in(mail.outbox[0]).removeprefix("http://testserver")


def use(client, link: str, password: str = NEW_PASSWORD):
    """Open the link as the e-mail's reader would, then send the form."""
    response = client.get(link)
    if response.status_code != 302:
        return response
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")  # the token left the URL for the session (no Referer leak)
    assert "Choose your password" in client.get(form_url).content.decode()
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_the_link_sets_the_password_and_signs_in_once(client, invited):
    user, link = invited
    response = use(client, link)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("home")).context["user"] == user
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert Invitation.objects.get(user=user).accepted_at is not None

    client.logout()
    second = use(client, link)
    assert second.status_code == 200
    assert "already used" in second.content.decode()
    signed_in = client.post(reverse("login"), {"username": "amina", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("home")


def test_a_weak_password_is_refused_with_the_reason(client, invited):
    _user, link = invited
    response = use(client, link, password="12345678")
    assert response.status_code == 200
    assert "too common" in response.content.decode() or "entirely numeric" in response.content.decode()
    assert not User.objects.get(username="amina").has_usable_password()


def test_an_expired_link_is_refused_and_says_so(client, invited):
    user, _link = invited
    eight_days_ago = invitation_tokens._num_seconds(invitation_tokens._now()) - 8 * 86400
    token = invitation_tokens._make_token_with_timestamp(user, eight_days_ago, invitation_tokens.secret)
    Invitation.objects.filter(user=user).update(created_at=timezone.now() - timedelta(days=8),
                                                expires_at=timezone.now() - timedelta(days=1))
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    link = reverse("invitation", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": token})
    response = client.get(link)
    assert response.status_code == 200
    assert "expired" in response.content.decode()
    assert not User.objects.get(pk=user.pk).has_usable_password()


def test_a_new_invitation_ends_the_old_link(client, invited, admin_user):
    user, old_link = invited
    sent = invitation_send(user=user, created_by=admin_user, base_url="http://testserver")
    assert sent.sent and sent.link != "http://testserver" + old_link
    refused = client.get(old_link)
    assert refused.status_code == 200 and "newer invitation" in refused.content.decode()
    assert use(client, sent.link.removeprefix("http://testserver")).status_code == 302


def test_a_reset_token_is_no_invitation(client, invited):
    from django.contrib.auth.tokens import default_token_generator

    user, link = invited
    forged = link.rsplit("/", 2)[0] + "/" + default_token_generator.make_token(user) + "/"
    assert client.get(forged).status_code == 200  # the refusal page, not the redirect to the form


def test_someone_with_a_password_gets_no_new_invitation(annotator, admin_user):
    with pytest.raises(InvalidInput, match="already chosen a password"):
        invitation_send(user=annotator, created_by=admin_user, base_url="http://testserver")


def test_the_admin_page_invites_and_lists_problems_by_line(client, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:annotation_annotatorprofile_invite")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"text": "username,email,native_languages\nx,x@example.org,klingon\n"})
    assert bad.status_code == 200
    assert bad.context["errors"][0]["line"] == 2 and "klingon" in bad.content.decode()
    assert not User.objects.filter(username="x").exists()
    good = client.post(url, {"text": GOOD})
    assert good.status_code == 200
    assert [result.username for result in good.context["results"]] == ["amina", "kavya", "li"]
    assert "http://testserver/accounts/invitation/" in good.content.decode()
    assert len(mail.outbox) == 3


def test_the_command_invites_or_lists_problems(tmp_path, capsys):
    path = tmp_path / "team.csv"
    path.write_text("username,email,native_languages\nx,x@example.org,sw\nx,y@example.org,sw\n", encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        call_command("invite_annotators", str(path))
    assert f"{path}:3: username:" in str(refused.value)
    path.write_text(GOOD, encoding="utf-8")
    call_command("invite_annotators", str(path), "--check")
    assert not User.objects.filter(username="amina").exists()
    call_command("invite_annotators", str(path), "--site-url", "https://annotate.example.org")
    out = capsys.readouterr().out
    assert "amina <amina@example.org>: e-mailed" in out
    assert "https://annotate.example.org/accounts/invitation/" in out
    assert User.objects.filter(username__in=["amina", "kavya", "li"]).count() == 3


@pytest.fixture(autouse=True)
def _db(db):
    return db
