"""Fixtures of the job runtime's tests, one test module per module of workers/ (the helpers
that other apps' tests use too are in tests/jobs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

# The tests run workers on project.asgi's application, whose import sets Django up again, and
# with it the logging: done here, at collection, not inside a test whose log capture it would
# detach.
import project.asgi  # noqa: F401


@pytest.fixture(autouse=True)
def _empty_layer(empty_layer: None) -> None:
    """Every test starts with no wake-up or event left over from another."""


@pytest.fixture
def admin_client(django_user_model: Any) -> Client:
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    client = Client()
    client.force_login(admin)
    return client
