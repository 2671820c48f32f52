"""Carry the keys of DRF's authtoken table (plain text, used before hashed tokens) into the hashed store, then empty
that table. Every existing key keeps working; none stays readable in the database.

rest_framework.authtoken is no longer an installed app, so its table is read with SQL where it exists (an
upgraded database) and the step does nothing on a new one. Its rows are deleted, the table left: dropping it would
leave DRF's recorded migrations pointing at nothing should the app come back.
"""

import hashlib
from datetime import UTC

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

LEGACY_TABLE = "authtoken_token"


def hash_legacy_keys(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    APIToken = apps.get_model("apitokens", "APIToken")
    table = schema_editor.quote_name(LEGACY_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id, created FROM {table}")  # noqa: S608
        rows = cursor.fetchall()
    tokens = []
    for key, user_id, created in rows:
        if isinstance(created, str):
            created = parse_datetime(created)
        if created is None:
            created = timezone.now()
        elif timezone.is_naive(created):
            created = timezone.make_aware(created, UTC)
        tokens.append(APIToken(user_id=user_id, prefix=key[:8], digest=hashlib.sha256(key.encode()).hexdigest(),
                               created=created))
    APIToken.objects.bulk_create(tokens, batch_size=500)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # Overwrite the deleted rows' bytes too, or the keys would linger on free pages of the file (and in
            # every copy of it) until SQLite reused them.
            cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("apitokens", "0001_api_token")]

    # The keys cannot be recovered from their hashes: going back leaves the hashed store as it is.
    operations = [migrations.RunPython(hash_legacy_keys, migrations.RunPython.noop)]
