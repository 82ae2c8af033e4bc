"""Writes for API tokens: create (the secret is returned once), revoke, mark used."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from audit.models import EventType
from audit.services import event_record

from .models import ApiToken

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

TOKEN_PREFIX = "am_"  # noqa: S105 - marks our tokens, not a secret
# last_used_at is refreshed at most this often: a poller must not turn into a write storm.
USE_RECORD_INTERVAL = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(
    *, organization: Organization, user: User, name: str, request: HttpRequest | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the plain secret is returned here and never again."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=organization,
            name=name,
            prefix=secret[: len(TOKEN_PREFIX) + 8],
            token_hash=token_hash(secret),
            created_by=user,
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            actor=user,
            organization=organization,
            details={
                "setting": "api_token",
                "change": "created",
                "name": name,
                "prefix": token.prefix,
            },
            request=request,
        )
    return token, secret


def api_token_revoke(*, token: ApiToken, user: User, request: HttpRequest | None = None) -> bool:
    """Revoke a token; False when it was already revoked."""
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=user
        )
        if changed:
            event_record(
                event_type=EventType.SETTINGS_CHANGED,
                actor=user,
                organization=token.organization,
                details={
                    "setting": "api_token",
                    "change": "revoked",
                    "name": token.name,
                    "prefix": token.prefix,
                },
                request=request,
            )
    return bool(changed)


def api_token_used(*, token: ApiToken, ip_address: str | None) -> None:
    """Remember when and from where the token was last used (throttled)."""
    now = timezone.now()
    if token.last_used_at and now - token.last_used_at < USE_RECORD_INTERVAL:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip_address)
