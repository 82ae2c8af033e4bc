"""The Ed25519 key seals are signed with, from settings.INTEGRITY_SIGNING_KEY."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

SETTING = "INTEGRITY_SIGNING_KEY"


class SigningKeyError(Exception):
    """The signing key is missing or is not an Ed25519 private key; says which setting."""


def signing_key() -> Ed25519PrivateKey:
    """The private key: the 32-byte seed in base64 (`manage.py seal_events --new-key` prints
    one) or a PKCS#8 PEM. Raises SigningKeyError naming the setting."""
    value = (getattr(settings, SETTING, "") or "").strip()
    if not value:
        raise SigningKeyError(
            f"{SETTING} is not set: events cannot be sealed, and sealed events cannot be "
            "verified. Set it to an Ed25519 private key (docs/integrity.md)."
        )
    try:
        if value.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(value.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        seed = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        if len(seed) != 32:
            raise ValueError(f"{len(seed)} bytes, not 32")
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        # The value itself is never repeated: it is a secret.
        raise SigningKeyError(
            f"{SETTING} is not an Ed25519 private key ({exc.__class__.__name__}): give the "
            "32-byte seed in base64 or a PKCS#8 PEM (docs/integrity.md)."
        ) from None


def key_id(public: Ed25519PublicKey) -> str:
    """A short public name of the key: the first 16 hex digits of its public bytes' SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def new_key() -> str:
    """A fresh private key as INTEGRITY_SIGNING_KEY takes it (base64 of the seed)."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode()
