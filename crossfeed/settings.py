"""Crossfeed settings, all read from the environment (see docs/configuration.md).

DJANGO_ENV=production turns on the deployment checks' settings (secure cookies, HSTS, no generated secret).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from crossfeed.env import envbool, envint, envlist, secret_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CROSSFEED_VAR_DIR", BASE_DIR / "var"))
MEDIA_ROOT = Path(os.environ.get("CROSSFEED_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

PRODUCTION = os.environ.get("DJANGO_ENV", "development") == "production"

# In production the secret must come from SECRET_KEY or SECRET_KEY_FILE; elsewhere one is generated into var/.
SECRET_KEY = secret_from_env("SECRET_KEY", fallback_file=None if PRODUCTION else VAR_DIR / "secret_key")
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "annotation",
    "training",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crossfeed.i18n.UserLanguageMiddleware",  # a signed-in person's chosen language, over the cookie's
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that its process_exception sees a view's "database is locked" first: 503 + Retry-After, not 500.
    "crossfeed.busy.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "crossfeed.urls"
WSGI_APPLICATION = "crossfeed.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_config() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url) | _connection_reuse()
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["ENGINE"] = _sqlite_engine()
            config["OPTIONS"] = _sqlite_options()
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": _sqlite_engine(),
        "NAME": VAR_DIR / "crossfeed.sqlite3",
        "OPTIONS": _sqlite_options(),
        **_connection_reuse(),
        # A file, not Django's default in-memory test database: the concurrency tests use several connections.
        "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
    }


def _connection_reuse() -> dict:
    # Every engine keeps its connection between requests: for SQLite, opening one costs a worker the file open, the
    # PRAGMAs and Django's registration of its SQL functions at every request (a sixth of a busy worker's time under
    # load, docs/benchmarks.md). The health check replaces a connection broken by a database restart.
    return {"CONN_MAX_AGE": envint("DB_CONN_MAX_AGE", 60), "CONN_HEALTH_CHECKS": True}


def _sqlite_engine() -> str:
    # Django's SQLite backend plus a fair cross-process write lock (crossfeed/db/sqlite3/base.py explains why).
    return "crossfeed.db.sqlite3" if envbool("SQLITE_WRITE_LOCK", True) else "django.db.backends.sqlite3"


def _sqlite_options() -> dict:
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy timeout instead of failing with
    # "database is locked" when a reader upgrades to a writer. WAL lets readers run during a write.
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": envint("SQLITE_BUSY_TIMEOUT", 20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }


DATABASES = {"default": _database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
# The interface languages with a catalog in locale/ (docs/translations.md), named in their own language.
LANGUAGES = [("en", "English"), ("ar", "العربية"), ("es", "Español"), ("fr", "Français"), ("hi", "हिन्दी"),
             ("sw", "Kiswahili"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Import limits: a request body holds at most one import batch; bigger files go through the CLI or a multipart
# upload, which Django streams to a temporary file.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crossfeed.auth.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "crossfeed.parsers.JSONParser",  # DRF's, with deeply nested JSON a 400 instead of a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "crossfeed.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Crossfeed API",
    "DESCRIPTION": "Cross-lingual preference annotation, export, training and evaluation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the pinned sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "exports", "training", "evaluation"],
    }
}

CROSSFEED = {
    # Hard limits on imported text, in characters; a longer text is refused with its line and field.
    "MAX_PROMPT_CHARS": envint("CROSSFEED_MAX_PROMPT_CHARS", 20_000),
    "MAX_RESPONSE_CHARS": envint("CROSSFEED_MAX_RESPONSE_CHARS", 20_000),
    "MAX_IMPORT_LINE_BYTES": envint("CROSSFEED_MAX_IMPORT_LINE_BYTES", 1_000_000),
    "MAX_IMPORT_ERRORS": envint("CROSSFEED_MAX_IMPORT_ERRORS", 1000),
}

# Seconds an API token's user is remembered per process (crossfeed/auth.py); 0 looks it up on every request.
TOKEN_CACHE_SECONDS = envint("TOKEN_CACHE_SECONDS", 30)

# Serves /bench/floor/ for bench/annotate_load.py; off everywhere else.
CROSSFEED_BENCH_FLOOR = envbool("CROSSFEED_BENCH_FLOOR", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept readable for API clients.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
