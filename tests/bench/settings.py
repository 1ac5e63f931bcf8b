"""Settings for the upload benchmark's server: the tests' settings, plus its comparison view.

The benchmark talks plain HTTP to a server on loopback with DEBUG off, so session and CSRF
cookies must not be HTTPS-only, and pages render without `collectstatic`'s manifest.
"""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.inrequest"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
