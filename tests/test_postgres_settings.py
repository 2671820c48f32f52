"""How settings.py configures a PostgreSQL DATABASE_URL (no server needed: the settings are only read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def database_settings(tmp_path, extra: dict[str, str], url: str = "postgres://crossfeed@db.internal:5432/crossfeed"):
    code = ("import json, django; django.setup(); from django.conf import settings; "
            "database = settings.DATABASES['default']; print(json.dumps({key: database[key] for key in "
            "('ENGINE', 'CONN_MAX_AGE', 'CONN_HEALTH_CHECKS')} | {'OPTIONS': database['OPTIONS']}, default=str))")
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "crossfeed.settings",
           "DATABASE_URL": url, **extra}
    for name in ("DB_POOL", "DB_SERVER_SIDE_BINDING", "DB_PREPARE_THRESHOLD"):
        if name not in extra:
            env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_postgresql_binds_on_the_server_and_keeps_its_connection(tmp_path):
    database = database_settings(tmp_path, {})
    assert database["ENGINE"] == "crossfeed.db.postgresql"  # the health check that asks the socket first
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 5
    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 60 and database["CONN_HEALTH_CHECKS"] is True


def test_a_pool_server_side_binding_and_url_options_come_from_the_environment(tmp_path):
    pooled = database_settings(tmp_path, {"DB_POOL": "1", "DB_POOL_MAX_SIZE": "4"},
                               url="postgres://crossfeed@db.internal:5432/crossfeed?sslmode=require")
    assert pooled["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 10}
    assert pooled["CONN_MAX_AGE"] == 0 and pooled["CONN_HEALTH_CHECKS"] is True  # the pool checks what it hands out
    assert pooled["OPTIONS"]["sslmode"] == "require"
    client_side = database_settings(tmp_path, {"DB_SERVER_SIDE_BINDING": "0"})
    assert client_side["OPTIONS"] == {"server_side_binding": False}
