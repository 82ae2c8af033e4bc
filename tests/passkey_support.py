"""A software passkey for the server-side tests: it answers the real views' WebAuthn options
the way an authenticator does (P-256 key, "none" attestation, signed assertions), so that
py_webauthn's checks run on real answers. The browser tests use Chromium's virtual authenticator.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse

RP_ID = "localhost"
ORIGIN = "http://localhost:8000"

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftPasskey:
    """One discoverable credential on a software authenticator."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_handle = b""

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _client_data(self, kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict[str, Any], *, origin: str = ORIGIN, rp_id: str = RP_ID) -> str:
        """The answer to navigator.credentials.create(options), as the browser's JSON."""
        self.user_handle = unb64url(options["user"]["id"])
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([UP | UV | AT])
            + struct.pack(">I", self.sign_count)
            + bytes(16)  # AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {"credProps": {"rk": True}},
            }
        )

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str = ORIGIN,
        rp_id: str = RP_ID,
        count: int | None = None,
    ) -> str:
        """The answer to navigator.credentials.get(options); `count` forces the sign count."""
        self.sign_count = self.sign_count + 1 if count is None else count
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([UP | UV])
            + struct.pack(">I", self.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(self.user_handle),
                },
                "clientExtensionResults": {},
            }
        )


def options_from(client: Client, name: str) -> dict[str, Any]:
    response = client.post(reverse(name))
    assert response.status_code == 200, response.content
    options: dict[str, Any] = response.json()
    return options


def add_passkey(client: Client, name: str = "Laptop") -> SoftPasskey:
    """Through the real views, as the signed-in person of `client`."""
    passkey = SoftPasskey()
    answer = passkey.create(options_from(client, "accounts:passkey-add-options"))
    response = client.post(reverse("accounts:passkey-add"), {"name": name, "credential": answer})
    assert response.status_code == 303, response.content
    return passkey
