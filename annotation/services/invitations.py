"""Annotators from a CSV, each invited by e-mail with a one-time link that lets them choose a password.

The CSV (docs/campaigns.md#people): a header row naming the columns `username`, `email`, `native_languages` and,
optionally, `reading_languages`; one annotator per row; several languages in a cell separated by spaces or
semicolons (commas too, inside a quoted cell). Every row is checked before anything is written, and every problem
is reported with its line; one problem and nothing is created.

The link carries a token from InvitationTokenGenerator: Django's password-reset token (an HMAC with SECRET_KEY over
the user's id, password hash, last login and e-mail, plus a timestamp) with its own salt, so a reset token is no
invitation and an invitation no reset token. An invited account has an unusable password (a random "!…" value):
setting a password changes the hash, so the link works once; sending a new invitation sets a new unusable password,
so the older link dies; the timestamp ends it after CROSSFEED["INVITATION_DAYS"] days.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode
from django.utils.translation import gettext as _

from annotation.languages import normalize_language_code
from annotation.models import Invitation, Language
from annotation.services.people import annotator_create
from crossfeed.errors import InvalidInput
from crossfeed.tokens.models import APIToken

COLUMNS = ("username", "email", "native_languages", "reading_languages")
REQUIRED_COLUMNS = ("username", "email", "native_languages")
# One campaign's team is tens of people; a thousand rows is far beyond it and keeps one request short.
MAX_ROWS = 1000
MAX_CSV_BYTES = 1024 * 1024
LANGUAGE_SEPARATORS = re.compile(r"[\s;,]+")


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token with its own salt and its own lifetime (CROSSFEED["INVITATION_DAYS"])."""

    key_salt = "crossfeed.invitations.InvitationTokenGenerator"

    def check_token(self, user, token) -> bool:
        # Django's check_token with PASSWORD_RESET_TIMEOUT swapped for the invitation's lifetime.
        if not (user and token):
            return False
        try:
            timestamp_b36, _hash = token.split("-")
            timestamp = base36_to_int(timestamp_b36)
        except ValueError:
            return False
        if not any(constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
                   for secret in [self.secret, *self.secret_fallbacks]):
            return False
        return self._num_seconds(self._now()) - timestamp <= invitation_lifetime().total_seconds()


invitation_tokens = InvitationTokenGenerator()


def invitation_lifetime() -> timedelta:
    return timedelta(days=settings.CROSSFEED["INVITATION_DAYS"])


@dataclass
class AnnotatorRow:
    line: int
    username: str
    email: str
    native_languages: list[str]
    reading_languages: list[str]


@dataclass
class InvitationSent:
    username: str
    email: str
    link: str
    sent: bool
    error: str = ""


@dataclass
class CSVCheck:
    rows: list[AnnotatorRow] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def error(self, line: int, column: str, message: str) -> None:
        self.errors.append({"line": line, "field": column, "message": message})


def annotators_parse_csv(*, content: bytes | str) -> list[AnnotatorRow]:
    """Read and check every row; raises InvalidInput with `errors` [{line, field, message}] listing every problem."""
    check = CSVCheck()
    if isinstance(content, bytes):
        if len(content) > MAX_CSV_BYTES:
            raise InvalidInput(_("The file has %(size)d bytes; at most %(limit)d are read. Split it into several "
                                 "files.") % {"size": len(content), "limit": MAX_CSV_BYTES}, field="file")
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(_("The file is not UTF-8 text (byte %(position)d). Save it as “CSV UTF-8” "
                                 "and upload it again.") % {"position": exc.start + 1}, field="file") from None
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(_("Line 1: %(problem)s") % {"problem": exc}, field="file") from None
    if header is None:
        raise InvalidInput(_("The file is empty: it needs a header row (%(columns)s) and one row per annotator.")
                           % {"columns": ", ".join(COLUMNS)}, field="file")
    columns = [name.strip().lower() for name in header]
    for index, name in enumerate(columns):
        if name not in COLUMNS:
            check.error(1, name or f"column {index + 1}",
                        _("Unknown column %(name)r; the columns are %(columns)s.")
                        % {"name": header[index][:40], "columns": ", ".join(COLUMNS)})
        elif columns.index(name) != index:
            check.error(1, name, _("The column %(name)s appears twice.") % {"name": name})
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            check.error(1, name, _("The header has no column %(name)s.") % {"name": name})
    if check.errors:
        raise _invalid(check)
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(check.rows) + 1 > MAX_ROWS:
                check.error(reader.line_num, "file", _("More than %(limit)d annotators in one file; split it.")
                            % {"limit": MAX_ROWS})
                break
            _check_row(check, reader.line_num, columns, values)
    except csv.Error as exc:
        check.error(reader.line_num, "file", str(exc))
    if not check.rows and not check.errors:
        check.error(2, "file", _("The file has a header but no annotators."))
    _check_against_database(check)
    if check.errors:
        raise _invalid(check)
    return check.rows


def _invalid(check: CSVCheck) -> InvalidInput:
    check.errors.sort(key=lambda error: error["line"])
    count = len(check.errors)
    return InvalidInput(_("The CSV has %(count)d problem(s); nothing was created. Fix every line listed and upload "
                          "the whole file again.") % {"count": count}, errors=check.errors)


def _check_row(check: CSVCheck, line: int, columns: list[str], values: list[str]) -> None:
    if len(values) > len(columns):
        check.error(line, "file", _("This row has %(found)d cells but the header names %(expected)d columns (a "
                                    "comma inside a cell needs quotes).")
                    % {"found": len(values), "expected": len(columns)})
        return
    cells = {name: (values[index].strip() if index < len(values) else "") for index, name in enumerate(columns)}
    errors_before = len(check.errors)
    username = cells["username"]
    user_model = get_user_model()
    if not username:
        check.error(line, "username", _("Required."))
    elif len(username) > 150:
        check.error(line, "username", _("At most 150 characters."))
    else:
        try:
            user_model._meta.get_field(user_model.USERNAME_FIELD).run_validators(username)
        except ValidationError as exc:
            check.error(line, "username", " ".join(exc.messages))
    email = cells["email"]
    if not email:
        check.error(line, "email", _("Required: the invitation is sent there."))
    else:
        try:
            validate_email(email)
        except ValidationError:
            check.error(line, "email", _("%(email)r is not an e-mail address.") % {"email": email[:80]})
    native = _language_codes(check, line, "native_languages", cells["native_languages"])
    if not cells["native_languages"]:
        check.error(line, "native_languages", _("At least one native language is required."))
    reading = _language_codes(check, line, "reading_languages", cells.get("reading_languages", ""))
    if len(check.errors) == errors_before:
        check.rows.append(AnnotatorRow(line, username, email, native, reading))
    else:
        # Kept for the duplicate checks below even when the row itself has problems.
        check.rows.append(AnnotatorRow(-line, username, email, [], []))


def _language_codes(check: CSVCheck, line: int, column: str, cell: str) -> list[str]:
    codes = []
    for code in (part for part in LANGUAGE_SEPARATORS.split(cell) if part):
        normalized = normalize_language_code(code)
        if normalized is None:
            check.error(line, column, _("Unknown language %(code)r: use a BCP-47 code such as sw or zh-Hans, or a "
                                        "FLORES-200 code such as swh_Latn.") % {"code": code[:40]})
        else:
            codes.append(normalized)
    return list(dict.fromkeys(codes))


def _check_against_database(check: CSVCheck) -> None:
    """Duplicates inside the file and against existing accounts, and languages the registry lacks."""
    seen_names: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    for row in check.rows:
        line = abs(row.line)
        if row.username:
            first = seen_names.setdefault(row.username.lower(), line)
            if first != line:
                check.error(line, "username", _("%(name)r is also on line %(first)d; usernames must differ.")
                            % {"name": row.username, "first": first})
        if row.email:
            first = seen_emails.setdefault(row.email.lower(), line)
            if first != line:
                check.error(line, "email", _("%(email)r is also on line %(first)d; each annotator needs their own "
                                             "address.") % {"email": row.email, "first": first})
    user_model = get_user_model()
    taken_names, taken_emails = set(), {}
    # Case-insensitive, in chunks that stay under SQLite's limit on query parameters.
    for chunk in _chunks(sorted(seen_names)):
        taken_names |= set(user_model.objects.annotate(lower=Lower("username")).filter(lower__in=chunk)
                           .values_list("lower", flat=True))
    for chunk in _chunks(sorted(seen_emails)):
        for username, email in (user_model.objects.annotate(lower=Lower("email")).filter(lower__in=chunk)
                                .values_list("username", "lower")):
            taken_emails[email] = username
    codes = {code for row in check.rows for code in row.native_languages + row.reading_languages}
    known = set(Language.objects.filter(code__in=codes).values_list("code", flat=True))
    for row in check.rows:
        line = abs(row.line)
        if row.username and row.username.lower() in taken_names:
            check.error(line, "username", _("A user named %(name)r already exists.") % {"name": row.username})
        if row.email and row.email.lower() in taken_emails:
            check.error(line, "email", _("The user %(name)r already has the address %(email)r.")
                        % {"name": taken_emails[row.email.lower()], "email": row.email})
        for column, row_codes in (("native_languages", row.native_languages),
                                  ("reading_languages", row.reading_languages)):
            for code in row_codes:
                if code not in known:
                    check.error(line, column, _("The language %(code)r is not in the registry (annotation/data/"
                                                "languages.json).") % {"code": code})
    check.rows = [row for row in check.rows if row.line > 0]


def _chunks(values: list[str], size: int = 200):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def invitation_link(*, user: AbstractBaseUser, base_url: str) -> str:
    path = reverse("invitation", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                                         "token": invitation_tokens.make_token(user)})
    return base_url.rstrip("/") + path


def annotators_invite(*, rows: list[AnnotatorRow], created_by: AbstractBaseUser | None,
                      base_url: str) -> list[InvitationSent]:
    """Create every annotator of the checked rows (all or none) and e-mail each an invitation once they are
    committed; returns the links, for the admin to pass on by hand where a mail did not go out. Call it outside a
    transaction: the e-mails leave when it returns."""
    with transaction.atomic():
        users = []
        for row in rows:
            try:
                profile, _key = annotator_create(
                    username=row.username, password=secrets.token_urlsafe(32), check_password=False,
                    email=row.email, native_languages=row.native_languages, reading_languages=row.reading_languages,
                )
            except InvalidInput as exc:
                # Only a change made meanwhile can get here (the rows were checked): reported like the checks.
                raise InvalidInput(_("Nothing was created: line %(line)d: %(problem)s")
                                   % {"line": row.line, "problem": exc.message},
                                   errors=[{"line": row.line, "field": exc.field or "file", "message": exc.message}]
                                   ) from None
            users.append(profile.user)
        # annotator_create issues an API token that nobody will see; annotators make their own on the token page.
        APIToken.objects.filter(user__in=users).delete()
        invitations = [_prepare(user, created_by) for user in users]
        results = [InvitationSent(user.get_username(), user.email, invitation_link(user=user, base_url=base_url),
                                  sent=False) for user in users]
    _send_all(list(zip(invitations, results, strict=True)))
    return results


def invitation_send(*, user: AbstractBaseUser, created_by: AbstractBaseUser | None, base_url: str) -> InvitationSent:
    """A new invitation for an annotator who has not chosen a password yet; every earlier link stops working."""
    if user.has_usable_password():
        raise InvalidInput(_("%(name)s has already chosen a password: send them to “Forgot your password?” "
                             "on the sign-in page instead.") % {"name": user.get_username()}, field="user")
    if not user.email:
        raise InvalidInput(_("%(name)s has no e-mail address: add one first.") % {"name": user.get_username()},
                           field="email")
    with transaction.atomic():
        invitation = _prepare(user, created_by)
    result = InvitationSent(user.get_username(), user.email, invitation_link(user=user, base_url=base_url),
                            sent=False)
    _send_all([(invitation, result)])
    return result


def _prepare(user, created_by) -> Invitation:
    # A new random unusable password: the token hashes it, so every earlier link of this user dies here.
    user.set_unusable_password()
    user.save(update_fields=["password"])
    now = timezone.now()
    return Invitation.objects.create(user=user, email=user.email, created_by=created_by, created_at=now,
                                     expires_at=now + invitation_lifetime())


def _send_all(pairs: list[tuple[Invitation, InvitationSent]]) -> None:
    """One SMTP connection for the whole batch; a failure is noted per annotator and the others still go out."""
    connection = get_connection()
    try:
        connection.open()
    except OSError as exc:
        for _invitation, result in pairs:
            result.error = str(exc)
        return
    try:
        for invitation, result in pairs:
            context = {"username": result.username, "link": result.link, "expires_at": invitation.expires_at,
                       "days": settings.CROSSFEED["INVITATION_DAYS"]}
            subject = render_to_string("registration/invitation_subject.txt", context).strip()
            body = render_to_string("registration/invitation_email.txt", context)
            try:
                EmailMessage(subject, body, to=[result.email], connection=connection).send()
            except OSError as exc:
                result.error = str(exc)
            else:
                result.sent = True
    finally:
        connection.close()


def invitation_accepted(*, user: AbstractBaseUser) -> None:
    Invitation.objects.filter(user=user, accepted_at__isnull=True).update(accepted_at=timezone.now())


def invitation_refusal(*, user: AbstractBaseUser | None) -> str:
    """Why an invitation link did not work, in words for the annotator who clicked it."""
    latest = Invitation.objects.filter(user=user).first() if user is not None else None
    if latest is None:
        return _("This invitation link is not valid. Check that you opened the whole link from the e-mail, or ask "
                 "the person who invited you for a new one.")
    if latest.accepted_at is not None:
        return _("This invitation was already used on %(date)s. Log in with the password you chose then, or use "
                 "“Forgot your password?” on the sign-in page.") % {
                     "date": timezone.localtime(latest.accepted_at).strftime("%Y-%m-%d %H:%M %Z")}
    if latest.is_expired():
        return _("This invitation expired on %(date)s. Ask the person who invited you to send a new one.") % {
            "date": timezone.localtime(latest.expires_at).strftime("%Y-%m-%d %H:%M %Z")}
    return _("This invitation link is no longer valid: a newer invitation was sent to you. Use the link in the "
             "latest e-mail.")
