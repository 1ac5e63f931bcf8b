"""Settings for the login benchmark's server: the benchmarks' settings with Django's own password
hasher (PBKDF2) instead of the tests' fast one, since its cost is what the lockout saves."""

from django.conf import global_settings

from tests.bench.settings import *  # noqa: F403

PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
