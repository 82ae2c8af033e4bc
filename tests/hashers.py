"""A real password hasher that counts its checks: registered through settings.PASSWORD_HASHERS."""

from __future__ import annotations

import threading

from django.contrib.auth.hashers import MD5PasswordHasher


class CountingMD5PasswordHasher(MD5PasswordHasher):
    """Django's MD5 hasher (the tests' fast one, same stored format) counting verify() calls,
    and encode() calls (`hashed`: what the dummy hash of an unknown address spends)."""

    _lock = threading.Lock()
    verified = 0
    hashed = 0

    def verify(self, password: str, encoded: str) -> bool:
        with self._lock:
            type(self).verified += 1
        return super().verify(password, encoded)

    def encode(self, password: str, salt: str) -> str:
        with self._lock:
            type(self).hashed += 1
        return super().encode(password, salt)

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.verified = 0
            cls.hashed = 0
