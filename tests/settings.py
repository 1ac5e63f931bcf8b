"""The project's settings, plus the test-only URLs and tasks, and a fast password hasher."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
