"""Quartermaster's settings: every value comes from the environment (or a ``.env`` file)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config import replicas

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (make writes one into .env for you)."
        )
    SECRET_KEY = "django-insecure-development-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Served over HTTPS (behind a TLS proxy, say): secure cookies, HSTS, redirect to https.
# Off by default, for `make run` on http://127.0.0.1.
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "orders_write",
    "orders_read",
]

MIDDLEWARE = [
    # First: a request with an over-long URL or header is refused before anything reads it.
    "config.http.middleware.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login, unless marked login_not_required (the API, login).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # The events of the commands a request issues record its user.
    "orders_write.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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


try:
    # With no server given and no replica named, N hot standbys of the private server.
    REPLICAS = env.int("REPLICAS", default=0)
except ValueError:
    REPLICAS = -1
if REPLICAS < 0:
    raise ImproperlyConfigured("REPLICAS must be a whole number of standbys, 0 or more.")
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    # No server given: use (and if need be start) the project's private one.
    from config import localdb

    DATABASES = {"default": localdb.django_database()}
# Streaming replicas (hot standbys) of the default database's server: replica_1 ….
replica_databases = replicas.databases_from_urls(env.list("DATABASE_REPLICA_URLS", default=[]))
if not replica_databases and not env.str("DATABASE_URL", default=""):
    replica_databases = localdb.replica_databases(REPLICAS)
DATABASES |= replica_databases
# Queries read the read models on the replica their request chose (orders_read.replicas);
# commands, migrations and everything else go to `default` (config/routers.py).
DATABASE_ROUTERS = ["orders_read.replicas.ReadModelRouter", "config.routers.PrimaryRouter"]
for database in DATABASES.values():
    # Keep a worker's connection between requests (a new one costs more than a lookup),
    # checked before reuse so that a database restart costs one request nothing.
    database.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    database.setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's ModelBackend, with a user's permissions read in one query.
AUTHENTICATION_BACKENDS = ["config.http.authentication.ModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

CACHES = {
    # Shared by every process (the server's workers): counts failed logins, for one.
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "quartermaster_cache",
    }
}

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes an anonymous request a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.http.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.http.restframework.HasRequiredPermissions"],
    "DEFAULT_PARSER_CLASSES": ["config.http.restframework.JSONParser"],
    # orjson (Rust) renders the same JSON as DRF's encoder, in a fraction of the time.
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.http.restframework.Pagination",
    "DEFAULT_SCHEMA_CLASS": "config.http.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.http.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"failed_login": env.str("FAILED_LOGIN_RATE", default="5/min")},
    # Proxies in front of the app: 0 trusts no X-Forwarded-For, so that a client cannot
    # pick the address its failed logins are counted under.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Quartermaster API",
    # The docs' front page: what the API is, and getting started (token, command, query).
    "DESCRIPTION": (BASE_DIR / "config" / "http" / "api_description.md").read_text("utf-8"),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "DEFAULT_GENERATOR_CLASS": "config.http.schema.SchemaGenerator",
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The read side: "async" (the command answers after its commit) leaves refreshing the
# read models to `manage.py refresh_views --watch`, which `make run` supervises; "sync"
# refreshes them in the request that wrote, for a deployment without a watcher.
READ_MODEL_REFRESH = env.str("READ_MODEL_REFRESH", default="async")
if READ_MODEL_REFRESH not in {"sync", "async"}:
    raise ImproperlyConfigured("READ_MODEL_REFRESH must be 'sync' or 'async'.")
READ_MODEL_MAX_WAIT = env.float("READ_MODEL_MAX_WAIT", default=2.0)
# How long a query waits for its replica to replay a write the primary's read models
# already show, before the primary answers it instead (orders_read.replicas).
READ_MODEL_REPLICA_CATCH_UP = env.float("READ_MODEL_REPLICA_CATCH_UP", default=0.2)
# A refresh that waits on a lock or runs longer than this fails (and is retried later).
READ_MODEL_REFRESH_TIMEOUT = env.float("READ_MODEL_REFRESH_TIMEOUT", default=10.0)
# How often `refresh_views --watch` checks every view against the event log anyway.
READ_MODEL_WATCH_INTERVAL = env.float("READ_MODEL_WATCH_INTERVAL", default=30.0)
# Under load, the most of one core the watcher's refreshes take: after a round of
# refreshes it lets announcements gather for as long as that keeps its busy share
# below this, so one refresh serves more writes the faster they come. A lone write is
# refreshed at once. 1 refreshes back to back.
READ_MODEL_WATCHER_SHARE = env.float("READ_MODEL_WATCHER_SHARE", default=0.25)
if not 0 < READ_MODEL_WATCHER_SHARE <= 1:
    raise ImproperlyConfigured("READ_MODEL_WATCHER_SHARE must be above 0 and at most 1.")
# Once a read model's delta holds this many rows, or a tenth of its base's if more, the
# watcher rebuilds its base in the background, folding the delta in.
READ_MODEL_DELTA_LIMIT = env.int("READ_MODEL_DELTA_LIMIT", default=2000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}
