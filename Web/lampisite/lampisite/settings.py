"""Settings for the LAMPI site.

Every setting that differs between a laptop and a server comes from an environment variable with a safe local
default. `LAMPI_PRODUCTION=1` switches to the deployed mode, which passes `manage.py check --deploy`.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_flag(name: str, default: bool = False) -> bool:
    """Reads a yes/no environment variable: 1, true, yes and on (any case) mean yes."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Reads a comma-separated environment variable into a list, dropping blanks."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- Mode
# Production: DEBUG off, the secret key and the allowed hosts must come from the environment.
PRODUCTION = env_flag("LAMPI_PRODUCTION")
# Served over HTTPS (cookies marked secure, HSTS, redirect to https). Off for the course's plain-HTTP setup.
HTTPS = env_flag("LAMPI_HTTPS")
DEBUG = env_flag("LAMPI_DEBUG", default=not PRODUCTION)

# ---------------------------------------------------------------- Security
if PRODUCTION:
    SECRET_KEY = os.environ.get("LAMPI_SECRET_KEY", "")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("LAMPI_PRODUCTION=1 needs LAMPI_SECRET_KEY: 50 or more random characters")
else:
    # A fixed key is fine on loopback only: production refuses to start without its own.
    SECRET_KEY = os.environ.get("LAMPI_SECRET_KEY", "insecure-local-key-never-deployed-" + "x" * 30)
# Host names the site answers to (comma-separated).
ALLOWED_HOSTS = env_list("LAMPI_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
# Origins trusted for CSRF when behind a proxy on another port or scheme (comma-separated, with scheme).
CSRF_TRUSTED_ORIGINS = env_list("LAMPI_CSRF_TRUSTED_ORIGINS", "")

SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
# HSTS only where HTTPS is really used: one year, as check --deploy asks.
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
# NGINX terminates TLS and tells Django the scheme.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
if PRODUCTION and not HTTPS:
    # The course's deployment serves plain HTTP on port 80: these four checks only apply to HTTPS.
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]

# ---------------------------------------------------------------- Applications
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "lampi",
    "fleet",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lampisite.urls"
WSGI_APPLICATION = "lampisite.wsgi.application"

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

# ---------------------------------------------------------------- Database
# SQLite file by default; LAMPI_DB_ENGINE=postgresql uses the LAMPI_DB_* connection settings.
DB_ENGINE = os.environ.get("LAMPI_DB_ENGINE", "sqlite")
if DB_ENGINE == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # Path of the SQLite database file.
            "NAME": os.environ.get("LAMPI_DB_NAME", str(BASE_DIR / "db.sqlite3")),
            # Seconds a writer waits for the database lock before failing.
            "OPTIONS": {"timeout": float(os.environ.get("LAMPI_DB_TIMEOUT", "20"))},
        }
    }
elif DB_ENGINE == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("LAMPI_DB_NAME", "lampi"),
            "USER": os.environ.get("LAMPI_DB_USER", "lampi"),
            "PASSWORD": os.environ.get("LAMPI_DB_PASSWORD", ""),
            # Empty host means the local unix socket.
            "HOST": os.environ.get("LAMPI_DB_HOST", ""),
            "PORT": os.environ.get("LAMPI_DB_PORT", ""),
            # Seconds a connection is kept between requests (0: closed after each request).
            "CONN_MAX_AGE": int(os.environ.get("LAMPI_DB_CONN_MAX_AGE", "0")),
        }
    }
else:
    raise ImproperlyConfigured(f"LAMPI_DB_ENGINE must be sqlite or postgresql, not {DB_ENGINE!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- Sessions and cache
# Where sessions are kept: django.contrib.sessions.backends.db (Django's default), cached_db, cache, ...
SESSION_ENGINE = os.environ.get("LAMPI_SESSION_ENGINE", "django.contrib.sessions.backends.db")
# memcached address (host:port, or unix:/path) for Django's cache. Empty: each process's own memory.
CACHE_LOCATION = os.environ.get("LAMPI_CACHE_LOCATION", "")
if CACHE_LOCATION:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": CACHE_LOCATION,
            # Small requests: send at once rather than wait to fill a packet (Nagle).
            "OPTIONS": {"no_delay": True},
        }
    }

# ---------------------------------------------------------------- Authentication
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Dotted paths of the password hashers, first one used for new hashes (comma-separated). Empty: Django's
# default list (PBKDF2-SHA256, 1,000,000 iterations on Django 5.2). Tests that only need speed set a fast one.
if os.environ.get("LAMPI_PASSWORD_HASHERS"):
    PASSWORD_HASHERS = env_list("LAMPI_PASSWORD_HASHERS", "")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lampi:index"
LOGOUT_REDIRECT_URL = "login"

# ---------------------------------------------------------------- MQTT
# The broker the MQTT daemon and the web views publish to (TCP).
MQTT_BROKER_HOST = os.environ.get("LAMPI_MQTT_HOST", "127.0.0.1")
# TCP port of the broker's MQTT listener.
MQTT_BROKER_PORT = int(os.environ.get("LAMPI_MQTT_PORT", "1883"))
# The browser's MQTT-over-WebSockets address. Empty: ws://<the page's host>:LAMPI_WS_PORT/mqtt.
MQTT_WEBSOCKETS_URL = os.environ.get("LAMPI_MQTT_WS_URL", "")
# Port of the broker's WebSockets listener, used when LAMPI_MQTT_WS_URL is empty.
MQTT_WEBSOCKETS_PORT = int(os.environ.get("LAMPI_WS_PORT", "9001"))
# Seconds the web views wait for the broker to acknowledge a publish before logging a failure.
MQTT_PUBLISH_TIMEOUT = float(os.environ.get("LAMPI_MQTT_PUBLISH_TIMEOUT", "5"))

# ---------------------------------------------------------------- Internationalization
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- Static files
STATIC_URL = "static/"
# Where collectstatic gathers files for NGINX to serve.
STATIC_ROOT = Path(os.environ.get("LAMPI_STATIC_ROOT", BASE_DIR / "staticfiles"))

# ---------------------------------------------------------------- Logging
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"lampi": {"handlers": ["console"], "level": os.environ.get("LAMPI_LOG_LEVEL", "INFO")}},
}
