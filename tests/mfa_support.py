"""Shared steps for the MFA tests: a confirmed authenticator, its codes, the two-step sign-in."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

from .helpers import sign_in

VERIFY_URL = reverse("accounts:mfa-verify")


def totp_device(user: User, name: str = "Phone") -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def backup_codes(user: User, codes: tuple[str, ...] = ("aaaabbbb", "ccccdddd")) -> StaticDevice:
    device = StaticDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    for code in codes:
        StaticToken.objects.create(device=device, token=code)
    return device


def code_for(device: TOTPDevice, steps_from_now: int = 0) -> str:
    """The code the app shows now (or that many 30-second steps away)."""
    value = totp(device.bin_key, device.step, device.t0, device.digits, steps_from_now)
    return f"{value:0{device.digits}d}"


def second_step(client: Client, code: str, **extra):
    return client.post(VERIFY_URL, {"code": code}, **extra)


def sign_in_with_code(client: Client, user: User, code: str):
    first = sign_in(client, user.email)
    assert first.status_code == 303 and first["Location"] == VERIFY_URL
    return second_step(client, code)
