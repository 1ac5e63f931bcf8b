"""The project's settings, plus the test-only URLs and tasks, and a fast password hasher."""

import os

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if "PYTEST_VERSION" in os.environ:
    # In the test process itself, threads that touched the database must not keep their
    # connections open past a test, or the test database cannot be flushed and dropped.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
