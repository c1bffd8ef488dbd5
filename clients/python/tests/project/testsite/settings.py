"""Settings of the small Django + Wagtail site the tests put behind a real Vanish.

The test harness sets VANISH_TEST_DB (SQLite file shared by the test process and the server)
before Django starts, and VANISH_TEST_ADMIN_URL (the Vanish admin listener) and
VANISH_TEST_SITE (the Vanish proxy, as clients reach the site) once Vanish runs: in the
server's environment before it starts; in the test process (where Django is set up before
any server runs) it overrides VANISH and WAGTAILADMIN_BASE_URL with them.

Timeouts are generous: the tests run on busy machines too, and a slow answer must not fail
a purge that would succeed.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "vanish-client-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "testsite.urls"
WSGI_APPLICATION = "testsite.wsgi.application"
USE_TZ = True
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "vanish_client.django",
    "vanish_client.wagtail",
    "shop",
    "pages",
    "wagtail.contrib.frontend_cache",
    "wagtail.users",
    "wagtail.images",
    "wagtail.documents",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

# The usual stack: sessions, CSRF and auth are on, and cached pages still set no cookie.
MIDDLEWARE = [
    "testsite.counting.CountingMiddleware",
    "vanish_client.django.VanishMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# Embedded mode (tests/test_embedded_*.py, settings_embedded.py): Django's site-wide cache
# pair, the drop-ins on Vanish's engine; the counter innermost, so it counts renders.
EMBEDDED_MIDDLEWARE = [
    "vanish_client.django.UpdateCacheMiddleware",
    "vanish_client.django.VanishMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "vanish_client.django.FetchFromCacheMiddleware",
    "testsite.counting.CountingMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("VANISH_TEST_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}

STATIC_URL = "/static/"
MEDIA_ROOT = os.environ.get("VANISH_TEST_MEDIA", str(BASE_DIR / "media"))

VANISH = {
    "ADMIN_URL": os.environ.get("VANISH_TEST_ADMIN_URL", "http://127.0.0.1:8081"),
    "SITE": os.environ.get("VANISH_TEST_SITE", "http://127.0.0.1:8080"),
    "RAISE_ERRORS": True,
    "TIMEOUT": 30,
    "RETRIES": 1,
    "BACKOFF": 0.05,
    "MAX_AGE": 600,
    "CACHE_PAGES": True,
    "EXCLUDE_PATHS": ["/admin/", "/__requests__"],
}

WAGTAIL_SITE_NAME = "Vanish test site"
WAGTAILADMIN_BASE_URL = os.environ.get("VANISH_TEST_SITE", "http://127.0.0.1:8080")
WAGTAILADMIN_COMMENTS_ENABLED = False
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILFRONTENDCACHE = {
    "vanish": {
        "BACKEND": "vanish_client.wagtail.VanishBackend",
        "TIMEOUT": 30,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "vanish_client": {"handlers": ["console"], "level": "INFO"},
    },
}
