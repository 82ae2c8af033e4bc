"""Fixtures shared by the test modules (the project's conftest.py sets up the database)."""

from __future__ import annotations

import pytest

from accounts.models import Organization, Role, User

from .factories import OrganizationFactory, member
from .hashers import CountingMD5PasswordHasher


@pytest.fixture
def org() -> Organization:
    """An organization named Acme (a module may define its own)."""
    return OrganizationFactory.create(name="Acme")


@pytest.fixture
def admin(org: Organization) -> User:
    """Acme's administrator, admin@acme.test."""
    return member(org, Role.ADMINISTRATOR, email="admin@acme.test")


@pytest.fixture(autouse=True)
def _exports_storage_in_tmp(settings, tmp_path):
    """Files a test makes (exports, compliance report bundles: seed_demo builds one) go to the
    test's own folder, never the checkout's var/."""
    settings.EXPORT_ROOT = tmp_path / "exports"


@pytest.fixture
def counted_checks(settings) -> type[CountingMD5PasswordHasher]:
    """Password checks counted by a real hasher (Django's MD5 one, counting verify() calls)."""
    settings.PASSWORD_HASHERS = ["tests.hashers.CountingMD5PasswordHasher"]
    CountingMD5PasswordHasher.reset()
    return CountingMD5PasswordHasher


@pytest.fixture(autouse=True)
def _full_throttle_buckets():
    """Each test starts with full throttle buckets: the sign-ins of earlier tests (all from the
    test client's 127.0.0.1) are not this test's. Within a test the real limits apply."""
    from .throttle_support import throttle_reset

    throttle_reset()


@pytest.fixture
def lockout_alone(settings):
    """Throttle limits far above the test's attempts: the lockout, not the throttle in front of
    it, decides (tests/test_throttling.py tests the throttle)."""
    settings.THROTTLE_IP_BURST = 10_000
    settings.THROTTLE_ACCOUNT_BURST = 10_000
