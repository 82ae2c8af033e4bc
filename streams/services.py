"""Stream destinations' settings: create, edit, pause, resume, replay, delete, each audited.

Every change records settings.changed with the old and new values of what a person may see:
the secret (HEC token, signing secret) is never among them, only whether it changed.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from activity_monitor.celery import enqueue
from api.feed import feed_before_first, feed_end
from audit.models import AuditEvent, EventType
from audit.selectors import events_for_organization
from audit.services import event_record

from .models import StreamDestination, Transport

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

SECRET_PREFIX = "whsec_"  # noqa: S105 - Standard Webhooks' prefix, not a secret


def new_signing_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _public(destination: StreamDestination) -> dict[str, Any]:
    """What an event may say about a destination: everything but its secret."""
    values: dict[str, Any] = {
        "name": destination.name,
        "transport": destination.transport,
        "format": destination.format,
        "paused": destination.is_paused,
    }
    if destination.transport == Transport.SYSLOG:
        values.update(host=destination.host, port=destination.port)
    else:
        values["url"] = destination.url
    if destination.transport == Transport.S3:
        # Not the access key id: the brief counts S3 keys among the secrets.
        values.update(
            bucket=destination.bucket, key_prefix=destination.key_prefix, region=destination.region
        )
    values["private_ca"] = bool(destination.ca_certificate)
    return values


def _changed(
    *,
    actor: User,
    reason: str,
    destination_id: int,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    request: HttpRequest | None,
    **extra: Any,
) -> None:
    event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=actor,
        reason=reason,
        details={
            "setting": "stream_destination",
            "destination_id": destination_id,
            "old": old,
            "new": new,
            **extra,
        },
        request=request,
    )


def _deliver_soon(destination_id: int) -> None:
    from . import tasks

    transaction.on_commit(lambda: enqueue(tasks.stream_deliver, destination_id))


def stream_destination_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    transport: str,
    fmt: str,
    host: str = "",
    port: int | None = None,
    url: str = "",
    ca_certificate: str = "",
    secret: str = "",
    bucket: str = "",
    key_prefix: str = "",
    region: str = "",
    access_key_id: str = "",
    request: HttpRequest | None = None,
) -> StreamDestination:
    """Add a destination that streams from now on (replay sends the past). HTTPS destinations
    get a fresh signing secret, which the caller shows once."""
    if transport == Transport.HTTPS:
        secret = new_signing_secret()
    with transaction.atomic():
        txid, event_id = feed_end(events_for_organization(organization=organization))
        destination = StreamDestination.objects.create(
            organization=organization,
            name=name,
            transport=transport,
            format=fmt,
            host=host,
            port=port,
            url=url,
            ca_certificate=ca_certificate,
            secret=secret,
            bucket=bucket,
            key_prefix=key_prefix,
            region=region,
            access_key_id=access_key_id,
            cursor_txid=txid,
            cursor_event_id=event_id,
        )
        _changed(
            actor=actor,
            reason="stream destination added",
            destination_id=destination.pk,
            old=None,
            new=_public(destination),
            request=request,
        )
    return destination


EDITABLE = (
    "name",
    "format",
    "host",
    "port",
    "url",
    "ca_certificate",
    "bucket",
    "key_prefix",
    "region",
)


def stream_destination_update(
    *,
    destination: StreamDestination,
    actor: User,
    changes: dict[str, Any],
    secret: str = "",
    access_key_id: str = "",
    request: HttpRequest | None = None,
) -> bool:
    """Change the editable fields (and the HEC token when one is given); False if nothing
    changed. The transport stays: a different one is a different destination."""
    old = _public(destination)
    for field, value in changes.items():
        if field in EDITABLE:
            setattr(destination, field, value)
    secret_changed = bool(secret) and secret != destination.secret
    if secret_changed:
        destination.secret = secret
    if access_key_id and access_key_id != destination.access_key_id:
        destination.access_key_id = access_key_id
        secret_changed = True
    new = _public(destination)
    ca_changed = "ca_certificate" in changes and changes["ca_certificate"] != (
        StreamDestination.objects.filter(pk=destination.pk)
        .values_list("ca_certificate", flat=True)
        .first()
    )
    if old == new and not secret_changed and not ca_changed:
        return False
    with transaction.atomic():
        destination.save()
        extra: dict[str, Any] = {}
        if secret_changed:
            # Not "secret_changed": the recording service drops secret-looking keys.
            extra["credentials_changed"] = True
        if ca_changed:
            extra["ca_certificate_changed"] = True
        _changed(
            actor=actor,
            reason="stream destination changed",
            destination_id=destination.pk,
            old=old,
            new=new,
            request=request,
            **extra,
        )
    return True


def stream_destination_pause(
    *, destination: StreamDestination, actor: User, request: HttpRequest | None = None
) -> bool:
    """Stop delivering (the cursor stays); False if it was paused already."""
    old = _public(destination)
    now = timezone.now()
    with transaction.atomic():
        paused = StreamDestination.objects.filter(pk=destination.pk, paused_at__isnull=True).update(
            paused_at=now, pause_reason=f"Paused by {actor.email}."
        )
        if not paused:
            return False
        destination.refresh_from_db()
        _changed(
            actor=actor,
            reason="stream destination paused",
            destination_id=destination.pk,
            old=old,
            new=_public(destination),
            request=request,
        )
    return True


def stream_destination_resume(
    *, destination: StreamDestination, actor: User, request: HttpRequest | None = None
) -> bool:
    """Deliver again from the stored cursor, at once; False if it was not paused."""
    old = _public(destination)
    with transaction.atomic():
        resumed = StreamDestination.objects.filter(
            pk=destination.pk, paused_at__isnull=False
        ).update(
            paused_at=None,
            pause_reason="",
            failures=0,
            failing_since=None,
            next_attempt_at=None,
        )
        if not resumed:
            return False
        destination.refresh_from_db()
        _changed(
            actor=actor,
            reason="stream destination resumed",
            destination_id=destination.pk,
            old=old,
            new=_public(destination),
            request=request,
        )
        _deliver_soon(destination.pk)
    return True


def replay_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def stream_destination_replay(
    *,
    destination: StreamDestination,
    actor: User,
    since: date,
    request: HttpRequest | None = None,
) -> None:
    """Move the cursor back to the first event of `since` (UTC), so that everything from then on
    is delivered again; never forward, which would skip events."""
    start = replay_start(since)
    events = events_for_organization(organization=destination.organization)
    with transaction.atomic():
        locked = StreamDestination.objects.select_for_update().get(pk=destination.pk)
        before = (locked.cursor_txid, locked.cursor_event_id)
        target = min(before, feed_before_first(events.filter(occurred_at__gte=start)))
        locked.cursor_txid, locked.cursor_event_id = target
        locked.next_attempt_at = None
        locked.save(update_fields=["cursor_txid", "cursor_event_id", "next_attempt_at"])
        _changed(
            actor=actor,
            reason="stream destination replayed",
            destination_id=destination.pk,
            old={"cursor": list(before)},
            new={"cursor": list(target), "replay_from": since.isoformat()},
            request=request,
        )
        _deliver_soon(destination.pk)


def stream_destination_delete(
    *, destination: StreamDestination, actor: User, request: HttpRequest | None = None
) -> None:
    """Remove the destination; nothing more is sent to it."""
    with transaction.atomic():
        old = _public(destination)
        destination_id = destination.pk
        destination.delete()
        _changed(
            actor=actor,
            reason="stream destination removed",
            destination_id=destination_id,
            old=old,
            new=None,
            request=request,
        )


def stream_test_event(*, destination: StreamDestination, actor: User) -> AuditEvent:
    """An event that is not stored, sent by the "send test event" button: id 0."""
    return AuditEvent(
        pk=0,
        txid=0,
        occurred_at=timezone.now(),
        organization=destination.organization,
        event_type=EventType.SETTINGS_CHANGED,
        reason="stream test event",
        actor=actor,
        actor_label=actor.email,
        details={"test": True, "destination": destination.name},
    )
