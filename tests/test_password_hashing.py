"""Passwords are hashed with Argon2id; older hashes are upgraded when their owner signs in."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, identify_hasher
from django.test import Client

from accounts.models import User

from .factories import PASSWORD, member
from .helpers import sign_in
from .settings_support import printed_json, production_env

PRODUCTION_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]


def test_production_hashes_with_argon2_and_still_reads_pbkdf2():
    seen = printed_json(
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps({'hashers': settings.PASSWORD_HASHERS}))",
        production_env(),
    )
    assert seen["hashers"] == PRODUCTION_HASHERS


@pytest.fixture
def pbkdf2_user(db, settings) -> User:
    """A member whose password was stored by PBKDF2 (few iterations, to keep the test quick)."""
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    user = member()
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "pbkdf2salt", iterations=1_000)
    user.save(update_fields=["password"])
    return user


def test_a_sign_in_upgrades_a_pbkdf2_hash_to_argon2id(pbkdf2_user):
    assert sign_in(Client(), pbkdf2_user.email).status_code == 303

    pbkdf2_user.refresh_from_db()
    assert identify_hasher(pbkdf2_user.password).algorithm == "argon2"
    assert pbkdf2_user.password.startswith("argon2$argon2id$")
    assert pbkdf2_user.check_password(PASSWORD)


def test_a_wrong_password_leaves_the_stored_hash_alone(pbkdf2_user):
    stored = pbkdf2_user.password
    assert sign_in(Client(), pbkdf2_user.email, "not the password").status_code == 200

    pbkdf2_user.refresh_from_db()
    assert pbkdf2_user.password == stored


def test_a_new_password_is_hashed_with_argon2id(db, settings):
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    user = User.objects.create_user("new@example.test", PASSWORD)
    assert user.password.startswith("argon2$argon2id$")
