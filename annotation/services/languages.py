from __future__ import annotations

from django.db import transaction

from annotation.languages import all_languages
from annotation.models import Language


@transaction.atomic
def languages_sync() -> int:
    """Make the Language table match annotation/data/languages.json; returns how many rows changed.

    Rows are never deleted: items keep their languages even if an entry leaves the file.
    """
    existing = {lang.code: lang for lang in Language.objects.all()}
    changed = 0
    for spec in all_languages():
        values = {
            "flores_code": spec.flores_code,
            "name": spec.name,
            "native_name": spec.native_name,
            "script": spec.script,
            "direction": spec.direction,
            "tier": spec.tier,
            "feedback_default": spec.feedback_default,
        }
        row = existing.get(spec.code)
        if row is None:
            Language.objects.create(code=spec.code, **values)
            changed += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            Language.objects.filter(pk=spec.code).update(**values)
            changed += 1
    return changed
