from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from annotation.languages import normalize_language_code
from annotation.models import AnnotatorProfile, Language
from annotation.selectors import forget_annotator_languages
from crossfeed.errors import InvalidInput
from crossfeed.tokens.services import token_issue


def _languages(codes: Iterable[str], field: str) -> list[Language]:
    if isinstance(codes, str) or not all(isinstance(code, str) for code in codes):
        raise InvalidInput(_("expected a list of language codes"), field=field)
    canonical = []
    for code in codes:
        normalized = normalize_language_code(code)
        if normalized is None:
            raise InvalidInput(_("unknown language %(code)r") % {"code": code[:40]}, field=field)
        canonical.append(normalized)
    found = {lang.code: lang for lang in Language.objects.filter(code__in=canonical)}
    return [found[code] for code in dict.fromkeys(canonical)]


@transaction.atomic
def annotator_create(
    *,
    username: str,
    password: str,
    native_languages: Iterable[str],
    reading_languages: Iterable[str] = (),
    email: str = "",
    check_password: bool = True,
) -> tuple[AnnotatorProfile, str]:
    """Create a user with an annotator profile and an API token; returns the profile and the token's key, which is
    stored only as a hash (shown this once). Signup is closed: only admins call this."""
    user_model = get_user_model()
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise InvalidInput(_("required, at most 150 characters"), field="username")
    try:
        # The model's own rule (letters, digits and @ . + - _), which the admin's forms apply and a bare save skips.
        user_model._meta.get_field(user_model.USERNAME_FIELD).run_validators(username)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="username") from None
    if user_model.objects.filter(username__iexact=username).exists():
        raise InvalidInput(_("a user named %(name)r already exists") % {"name": username}, field="username")
    native = _languages(native_languages, "native_languages")
    if not native:
        raise InvalidInput(_("at least one native language is required"), field="native_languages")
    reading = _languages(reading_languages, "reading_languages")
    user = user_model(username=username, email=email)
    if check_password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.save()
    profile = AnnotatorProfile.objects.create(user=user)
    profile.native_languages.set(native)
    profile.reading_languages.set(reading)
    key = token_issue(user=user)
    forget_annotator_languages(user.pk)
    return profile, key
