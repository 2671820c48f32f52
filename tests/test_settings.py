import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossfeed.env import envbool, envint, envlist, secret_from_env

ROOT = Path(__file__).resolve().parent.parent


def test_envbool_and_envint_explain_bad_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ValueError, match="X_FLAG='maybe'"):
        envbool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "on")
    assert envbool("X_FLAG", False) is True
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ValueError, match="expected an integer"):
        envint("X_NUM", 1)
    monkeypatch.setenv("X_LIST", " a, b ,,")
    assert envlist("X_LIST", []) == ["a", "b"]


def test_secret_is_generated_once_with_private_permissions(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    path = tmp_path / "secret_key"
    first = secret_from_env("SECRET_KEY", fallback_file=path)
    assert len(first) > 50 and secret_from_env("SECRET_KEY", fallback_file=path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_secret_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert secret_from_env("SECRET_KEY", fallback_file=None) == "from-env"
    monkeypatch.delenv("SECRET_KEY")
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "s"))
    assert secret_from_env("SECRET_KEY", fallback_file=None) == "from-file"
    monkeypatch.delenv("SECRET_KEY_FILE")
    with pytest.raises(ValueError, match="SECRET_KEY is required"):
        secret_from_env("SECRET_KEY", fallback_file=None)


def _manage(args, env_changes, tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"}}
    env.update({"CROSSFEED_VAR_DIR": str(tmp_path)} | env_changes)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_production_refuses_to_start_without_a_secret(tmp_path):
    result = _manage(["check"], {"DJANGO_ENV": "production"}, tmp_path)
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x" * 30 + "a-random-enough-secret-for-the-check-9b7c2f")
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"],
                     {"DJANGO_ENV": "production", "SECRET_KEY_FILE": str(secret), "ALLOWED_HOSTS": "example.org"},
                     tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_is_off_unless_asked(tmp_path):
    show = ["shell", "-c", "from django.conf import settings; print(settings.DEBUG)"]
    assert _manage(show, {}, tmp_path).stdout.split()[-1] == "False"
    assert _manage(show, {"DEBUG": "1"}, tmp_path).stdout.split()[-1] == "True"


def _gunicorn_settings(env: dict[str, str]) -> dict:
    import runpy

    with pytest.MonkeyPatch.context() as patch:
        for name in ("WEB_WORKERS", "WEB_WORKER_CLASS", "WEB_THREADS", "WEB_TIMEOUT"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return runpy.run_path(str(Path(__file__).resolve().parent.parent / "crossfeed" / "gunicorn_conf.py"))


def test_gunicorn_serves_with_first_come_first_served_workers_by_default():
    settings = _gunicorn_settings({})
    assert settings["worker_class"] == "crossfeed.gunicorn_worker.BufferedSyncWorker" and settings["threads"] == 1
    assert settings["workers"] == (os.cpu_count() or 2) * 2 + 1
    assert settings["preload_app"] is True and settings["timeout"] == 300
    assert settings["max_requests"] == 2000 and settings["max_requests_jitter"] == 200  # workers are recycled


def test_gunicorn_settings_come_from_the_environment():
    settings = _gunicorn_settings({"WEB_WORKERS": "3", "WEB_WORKER_CLASS": "gthread", "WEB_THREADS": "4",
                                   "WEB_TIMEOUT": "60", "WEB_MAX_REQUESTS": "0", "WEB_MAX_REQUESTS_JITTER": "7"})
    assert (settings["workers"], settings["worker_class"], settings["threads"], settings["timeout"]) == \
        (3, "gthread", 4, 60)
    assert (settings["max_requests"], settings["max_requests_jitter"]) == (0, 7)


def test_the_sqlite_engine_is_the_one_with_the_write_lock_unless_turned_off(tmp_path):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "crossfeed.settings"}
    env.pop("DATABASE_URL", None)
    run = lambda extra: subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code],  # noqa: E731
                                       env={**env, **extra}, capture_output=True, text=True, check=True).stdout
    assert run({}).strip() == "crossfeed.db.sqlite3"
    assert run({"SQLITE_WRITE_LOCK": "0"}).strip() == "django.db.backends.sqlite3"


def test_sqlite_connections_outlive_a_request_unless_turned_off(tmp_path):
    # Opening a SQLite connection (file, PRAGMAs, Django's SQL functions) at every request was a sixth of a busy
    # worker's time under load (docs/benchmarks.md); the connection is now kept, as for PostgreSQL.
    code = ("import django; django.setup(); from django.core.signals import request_finished; "
            "from django.db import connection; connection.ensure_connection(); first = connection.connection; "
            "request_finished.send(sender=None); print(connection.connection is first)")
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "crossfeed.settings"}
    env.pop("DATABASE_URL", None)
    run = lambda extra: subprocess.run([sys.executable, "-c", code], env={**env, **extra},  # noqa: E731
                                       capture_output=True, text=True, check=True).stdout.strip()
    assert run({}) == "True"
    assert run({"DB_CONN_MAX_AGE": "0"}) == "False"


def test_the_memory_cache_keeps_the_entries_of_thousands_of_annotators():
    """Django's default LocMemCache keeps 300 entries: a few hundred annotators' tokens, sessions' users, languages
    and progress snapshots overran it, and every round read them again."""
    from django.core.cache import cache

    keys = [f"test:annotator:{n}" for n in range(5_000)]
    cache.set_many(dict.fromkeys(keys, b"x" * 100), 60)
    assert len(cache.get_many(keys)) == len(keys)
