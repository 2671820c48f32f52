"""Crossfeed settings, all read from the environment (see docs/configuration.md).

DJANGO_ENV=production turns on the deployment checks' settings (secure cookies, HSTS, no generated secret).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from crossfeed.env import envbool, envint, envlist, secret_from_env
from crossfeed.file_modes import database_files_narrow, umask_from_env

# Files Crossfeed creates are its user's alone (crossfeed/file_modes.py): set before anything below creates var/.
UMASK = umask_from_env()
os.umask(UMASK)

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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "crossfeed.jobs",  # the worker lanes: manage.py crossfeed_worker --lane fast|accelerator
    "annotation",
    "training",
    "evaluation",
    "generation",
    "instructions",
    "translation",
    "axes",
    "csp",
    # Last: its post_migrate handler fills the "Crossfeed admin" group with the permissions of the apps above.
    "crossfeed.tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below whitenoise (static files go out precompressed, never through it), above everything that writes a body:
    # HTML pages gzip-compressed for browsers that accept it; API answers and downloads not (crossfeed/serving.py).
    "crossfeed.serving.PageGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the signed-in user's row cached for TOKEN_CACHE_SECONDS as an API token's is (crossfeed/auth.py).
    "crossfeed.auth.SessionUserMiddleware",
    "crossfeed.i18n.UserLanguageMiddleware",  # a signed-in person's chosen language, over the cookie's
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns a refused sign-in of a locked-out person into the lockout page (AXES_* below).
    "axes.middleware.AxesMiddleware",
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
        elif config["ENGINE"] == "django.db.backends.postgresql":
            config |= _postgresql_connection(config.get("OPTIONS", {}))
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


def _postgresql_connection(url_options: dict) -> dict:
    # Measured at 64 annotators (docs/benchmarks.md, "PostgreSQL round trips"): the server's CPU per judgment went to
    # statements, not to their rows. Server-side binding sends parameters apart from the SQL text, which lets psycopg
    # prepare a statement on a connection after DB_PREPARE_THRESHOLD executions, so the server parses and plans it
    # once per connection instead of on every request: 3.5-4.3 -> 1.3-1.8 ms of server CPU per judgment. Behind
    # PgBouncer in transaction mode, turn it off (DB_SERVER_SIDE_BINDING=0) unless PgBouncer tracks prepared
    # statements (max_prepared_statements). Options given in DATABASE_URL's query string win.
    options: dict = {"server_side_binding": envbool("DB_SERVER_SIDE_BINDING", True)}
    if options["server_side_binding"]:
        options["prepare_threshold"] = envint("DB_PREPARE_THRESHOLD", 5)
    # Django's backend, with a health check that looks at the connection's socket before it asks the server
    # (crossfeed/db/postgresql/base.py): the persistent connection's check costs no round trip.
    engine = "crossfeed.db.postgresql"
    if not envbool("DB_POOL", False):
        return {"ENGINE": engine, "OPTIONS": options | url_options}
    # Each process keeps its connections in a pool (psycopg_pool through Django): min 1, since a sync web worker
    # serves one request at a time; max 16 for threads (gthread workers, task workers, the concurrency tests), opened
    # on demand and closed after ten idle minutes. A request waits at most DB_POOL_TIMEOUT seconds for a connection
    # (a database that is down answers 500 after that, as a refused connection did). A pooled connection goes back to
    # the pool after each request: Django refuses CONN_MAX_AGE with a pool. CONN_HEALTH_CHECKS makes the pool check a
    # connection before handing it out (an empty query), so one the server closed (a restart) is replaced first.
    options["pool"] = {"min_size": envint("DB_POOL_MIN_SIZE", 1), "max_size": envint("DB_POOL_MAX_SIZE", 16),
                       "timeout": envint("DB_POOL_TIMEOUT", 10)}
    return {"ENGINE": engine, "OPTIONS": options | url_options, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True}


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
database_files_narrow(DATABASES["default"], umask=UMASK)  # a database created before the umask rule
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

# Sign-in throttling (django-axes) for the site's and the admin's login forms: after AXES_FAILURE_LIMIT wrong
# passwords for one username from one address, that pair is refused (429, the lockout page) until
# AXES_COOLOFF_MINUTES have passed since its last try. By username and address together, so that nobody can lock an
# annotator out from elsewhere and one lab's shared address does not lock out everyone in it. Unlock at once with
# `manage.py axes_reset_username USER` (or `axes_reset` for everyone). docs/deploy.md.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful sign-in forgets the earlier typos
AXES_LOCKOUT_CALLABLE = "crossfeed.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "crossfeed.auth.client_address"
# Behind a proxy every request comes from the proxy's address: the number of proxies in front, whose
# X-Forwarded-For entries are trusted. 0 reads the peer's address (then, behind a proxy, the lockout acts by
# username alone).
CROSSFEED_PROXY_COUNT = envint("CROSSFEED_PROXY_COUNT", 0)

LANGUAGE_CODE = "en"
# The interface languages with a catalog in locale/ (docs/translations.md), named in their own language.
LANGUAGES = [("en", "English"), ("ar", "العربية"), ("bn", "বাংলা"), ("es", "Español"), ("fr", "Français"),
             ("hi", "हिन्दी"), ("ja", "日本語"), ("pt-br", "Português (Brasil)"), ("ru", "Русский"),
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
    # Hashed names and .gz twins wherever collectstatic has run (`make run`, production): whitenoise serves those
    # with a one-year immutable Cache-Control. Plain names where it has not (tests). crossfeed/serving.py.
    "staticfiles": {"BACKEND": "crossfeed.serving.CollectedStaticFilesStorage"},
}

# Import limits: a request body holds at most one import batch; bigger files go through the CLI or a multipart
# upload, which Django streams to a temporary file.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Django's defaults (0644 files) would override the umask for uploads.
FILE_UPLOAD_PERMISSIONS = 0o666 & ~UMASK
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o777 & ~UMASK

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
    # A campaign's task (ranking, post_edit) and a benchmark's task are both fields named "task".
    "ENUM_NAME_OVERRIDES": {"CampaignTaskEnum": "annotation.models.core.Campaign.Task"},
}

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "exports", "imports", "training", "evaluation", "generation", "translation"],
    }
}

# What a post-editing verdict does to the text its item was made from (annotation/services/post_edits.py calls it
# with item_id, verdict, edits; it returns a writer run inside the judgment's transaction, or None).
CROSSFEED_POST_EDIT_RECORDER = "translation.services.post_edit.post_edit_prepare"

# What `manage.py seed_demo` adds beyond the annotation demo, each called with admin=<the demo admin>, in order.
CROSSFEED_DEMO_EXTRAS = ["instructions.services.demo.demo_instruction_set_import",
                         "translation.services.demo.demo_translator_add"]

# Worker lanes (crossfeed/jobs, docs/deploy.md): `manage.py crossfeed_worker --lane accelerator` takes these queues,
# one task at a time per GPU host; `--lane fast` takes every other queue, so an export never waits behind training.
# A new queue whose tasks need the GPU (generation, translation) belongs in this default.
CROSSFEED_ACCELERATOR_QUEUES = envlist("CROSSFEED_ACCELERATOR_QUEUES",
                                      ["training", "evaluation", "generation", "translation"])
# Hosts (host or host:port) that generation endpoints may be sent requests to; nothing else is ever contacted
# (docs/generation.md). Empty: no endpoint can be used.
CROSSFEED_GENERATION_ALLOWED_HOSTS = envlist("CROSSFEED_GENERATION_ALLOWED_HOSTS", [])
# How a generation job runs base models and versions: "transformers" (default), or "vllm" on a GPU host where vLLM is
# installed (elsewhere the job falls back to transformers and logs it). Sequences per transformers batch (prompts x
# samples), halved by the backend when the accelerator runs out of memory.
CROSSFEED_GENERATION_BACKEND = os.environ.get("CROSSFEED_GENERATION_BACKEND", "transformers")
CROSSFEED_GENERATION_BATCH_SIZE = envint("CROSSFEED_GENERATION_BATCH_SIZE", 32)

CROSSFEED = {
    # Hard limits on imported text, in characters; a longer text is refused with its line and field.
    "MAX_PROMPT_CHARS": envint("CROSSFEED_MAX_PROMPT_CHARS", 20_000),
    "MAX_RESPONSE_CHARS": envint("CROSSFEED_MAX_RESPONSE_CHARS", 20_000),
    "MAX_IMPORT_LINE_BYTES": envint("CROSSFEED_MAX_IMPORT_LINE_BYTES", 1_000_000),
    # Problems listed in an import's error answer (all are counted: error_count); bounds the answer's size.
    "MAX_IMPORT_ERRORS": envint("CROSSFEED_MAX_IMPORT_ERRORS", 100),
    # An import that has written nothing for this long is taken for dead and what it staged is deleted
    # (annotation/services/imports.py); an import whose process is gone on this host is taken at once.
    "IMPORT_STALE_SECONDS": envint("CROSSFEED_IMPORT_STALE_SECONDS", 600),
    # Most processes (GPUs) one training run may ask for; every accelerate config is one machine's (at most 64).
    "MAX_TRAINING_PROCESSES": envint("CROSSFEED_MAX_TRAINING_PROCESSES", 8),
    # People (docs/campaigns.md): an invitation link works this many days, once; a gap longer than the idle limit
    # between two signs of activity is not paid time.
    "INVITATION_DAYS": envint("CROSSFEED_INVITATION_DAYS", 7),
    "IDLE_LIMIT_SECONDS": envint("CROSSFEED_IDLE_LIMIT_SECONDS", 300),
}

# E-mail (invitations, password resets): printed to the console unless an SMTP host is set. docs/configuration.md.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = (secret_from_env("EMAIL_HOST_PASSWORD", fallback_file=None)
                       if os.environ.get("EMAIL_HOST_PASSWORD") or os.environ.get("EMAIL_HOST_PASSWORD_FILE") else "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", not envbool("EMAIL_USE_SSL", False))
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Crossfeed <crossfeed@localhost>")
# Where the site is reached, for links in e-mails sent outside a request (manage.py invite_annotators).
CROSSFEED_SITE_URL = os.environ.get("CROSSFEED_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Seconds an API token's user, and a signed-in session's user, is remembered per process (crossfeed/auth.py); 0 looks
# it up on every request.
TOKEN_CACHE_SECONDS = envint("TOKEN_CACHE_SECONDS", 30)

# Each process's own memory cache: tokens' and sessions' users, annotators' languages, progress snapshots, rendered
# fragments. Django's default keeps 300 entries and then drops a third of them at a time, fewer than a campaign of a
# few hundred annotators needs (several entries each: their token's or session's user, languages, progress); the
# entries are small.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": envint("CACHE_MAX_ENTRIES", 20_000)},
    }
}

# Serves /bench/floor/ for bench/annotate_load.py; off everywhere else.
CROSSFEED_BENCH_FLOOR = envbool("CROSSFEED_BENCH_FLOOR", False)

# The FLORES-200 SentencePiece model for spBLEU (`manage.py fetch_spbleu_model` puts it here on a machine with
# internet). Without it translation results say "spBLEU: model missing"; it is never downloaded at run time.
SPBLEU_MODEL = Path(os.environ.get("CROSSFEED_SPBLEU_MODEL", VAR_DIR / "models" / "flores200sacrebleuspm"))

# COMET-Kiwi as the translation jobs' quality score (docs/translation-quality.md): the python of an environment that
# has unbabel-comet (it cannot be installed beside our numpy and transformers) and a local checkpoint; both empty:
# the fallback score. CROSSFEED_COMET_TIMEOUT: seconds the scorer may take per 1,000 pairs (and once for loading).
COMET_PYTHON = os.environ.get("CROSSFEED_COMET_PYTHON", "").strip()
COMET_MODEL = os.environ.get("CROSSFEED_COMET_MODEL", "").strip()
COMET_TIMEOUT = envint("CROSSFEED_COMET_TIMEOUT", 600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes.apps announces itself at every start; axes' own lockout and failure lines stay.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}

SESSION_COOKIE_HTTPONLY = True
# Django's database sessions, the row read by one written-out statement on every signed-in request.
SESSION_ENGINE = "crossfeed.sessions"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept readable for API clients.
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own static files, never inline, so text
# that escaped escaping still cannot run. htmx is told by its meta config (base.html) neither to eval nor to inject
# its indicator styles; data blocks (json_script) are not scripts. data: images are Swagger UI's and the admin's
# icons. docs/deploy.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
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
