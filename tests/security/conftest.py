"""Security test helpers: fresh throttle counters per test, a hasher that counts its work, and
the deployment and nginx fixtures of tests/deploy for the tests that run the real processes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from tests.deploy.conftest import deployment
from tests.deploy.test_nginx import nginx, nginx_binary
from wire import ratelimit

__all__ = ["deployment", "nginx", "nginx_binary"]


@pytest.fixture(autouse=True)
def _fresh_counters(flush_redis: None) -> None:
    # The limiter's in-process counts outlive a test (Redis ones are flushed by flush_redis).
    ratelimit._local.clear()


class CountingHasher(MD5PasswordHasher):
    """The tests' fast hasher, counting how often it hashes a password: to check one (verify
    hashes through encode), and to make one (which Django also does for an unknown username,
    to take the same time)."""

    algorithm = "counting_md5"
    runs = 0

    def encode(self, password: str, salt: str) -> str:
        type(self).runs += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings: Any) -> type[CountingHasher]:
    settings.PASSWORD_HASHERS = ["tests.security.conftest.CountingHasher"]
    CountingHasher.runs = 0
    return CountingHasher
