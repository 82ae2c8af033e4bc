"""Streams to SIEMs against real receivers: TLS syslog, signed HTTPS, Splunk HEC.

Events must be committed for the feed to serve them (its horizon), so these tests commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import standardwebhooks
from django.core import mail
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, Role, Tier, User
from audit.models import AuditEvent, EventType
from audit.services import event_record
from streams import delivery, services
from streams.models import StreamDestination, Transport
from streams.tasks import stream_deliver as stream_deliver_task
from streams.transports import send, syslog_frame

from .factories import OrganizationFactory, member
from .helpers import client_as
from .integrity_support import horizon_passes
from .streams_support import (
    Certificate,
    HttpReceiver,
    SyslogListener,
    first_seen,
    parse_frames,
    self_signed,
)

pytestmark = pytest.mark.django_db(databases=["default", "audit"])
# Delivery reads committed events only (the feed's horizon): those tests commit.
committed = pytest.mark.django_db(transaction=True, databases=["default", "audit"])


@pytest.fixture
def stream_settings(settings):
    settings.STREAMS_ALLOW_PRIVATE = True  # the receivers are on loopback
    settings.STREAMS_TIMEOUT_SECONDS = 1.0
    settings.STREAMS_BATCH_SIZE = 4
    settings.STREAMS_BACKOFF_SECONDS = 10
    return settings


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory.create(tier=Tier.ENTERPRISE)


@pytest.fixture
def admin(org: Organization) -> User:
    return member(org, role=Role.ADMINISTRATOR)


@pytest.fixture
def certificate(tmp_path) -> Certificate:
    return self_signed(tmp_path)


@pytest.fixture
def syslog(certificate) -> Iterator[SyslogListener]:
    listener = SyslogListener(certificate).start()
    yield listener
    listener.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    local = HttpReceiver().start()
    yield local
    local.stop()


def _settled() -> None:
    """Wait until the feed serves every event there is: another session of the server (other
    tests, other databases) may hold its horizon back for a moment (api.feed)."""
    last = AuditEvent.objects.aggregate(last=Max("txid"))["last"]
    if last is not None:
        horizon_passes(last)


def _events(admin: User, count: int, **extra) -> list[int]:
    """Record `count` committed events in the admin's organization; their ids, in order."""
    ids = [
        event_record(
            event_type=EventType.LOGIN_SUCCEEDED, actor=admin, details={"n": n}, **extra
        ).pk
        for n in range(count)
    ]
    _settled()
    return ids


def _syslog_destination(admin: User, listener: SyslogListener, **extra) -> StreamDestination:
    return services.stream_destination_create(
        organization=admin.membership.organization,
        actor=admin,
        name="SIEM",
        transport=Transport.SYSLOG,
        fmt="json",
        host="localhost",
        port=listener.port,
        ca_certificate=listener.certificate.cert_pem,
        **extra,
    )


def _https_destination(admin: User, receiver: HttpReceiver) -> StreamDestination:
    destination = services.stream_destination_create(
        organization=admin.membership.organization,
        actor=admin,
        name="Intake",
        transport=Transport.HTTPS,
        fmt="json",
        url=receiver.url,
    )
    receiver.secret = destination.secret
    return destination


def _drain(destination: StreamDestination) -> int:
    """Deliver until caught up or failing, as the beat's tasks would; events delivered."""
    _settled()
    total = 0
    for _ in range(20):
        sent = delivery.stream_deliver(destination_id=destination.pk)
        total += sent
        if not sent:
            break
    return total


# --- Syslog over TLS ---------------------------------------------------------------------------


@committed
def test_syslog_receives_every_event_in_feed_order_as_rfc5424_frames(
    stream_settings, admin, syslog
):
    destination = _syslog_destination(admin, syslog)
    ids = _events(admin, 10)

    assert _drain(destination) == 10 + 1  # the destination's own settings.changed, first

    received = syslog.ids()
    assert received[1:] == ids
    message = syslog.messages[1]
    # <PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID SD: authpriv (10) * 8 + informational (6)
    start, stamp, host, app, procid, msgid, sd = message.header.split(" ")
    assert (start, app, procid, msgid, sd) == (
        "<86>1",
        "activity-monitor",
        "-",
        "login.succeeded",
        "-",
    )
    assert stamp.endswith("Z")
    assert message.json["event_type"] == "login.succeeded"
    destination.refresh_from_db()
    assert destination.last_event_id == ids[-1]
    assert destination.delivered_count == 11
    assert destination.last_error == ""


def test_syslog_returns_only_once_the_listener_has_read_the_whole_batch(
    stream_settings, admin, syslog
):
    # Closing at once after writing would reset the connection (the TLS 1.3 session tickets
    # the listener sent are unread) and the listener's system would drop what it had not read.
    destination = _syslog_destination(admin, syslog)
    now = timezone.now()
    batch = [
        AuditEvent(pk=n, event_type="login.succeeded", occurred_at=now, details={"pad": "x" * 200})
        for n in range(1, 3001)
    ]

    send(destination, batch)

    assert syslog.ids()[-3000:] == list(range(1, 3001))


def test_a_syslog_frame_counts_its_octets():
    event = AuditEvent(
        pk=7, event_type="login.failed", outcome="failure", occurred_at=timezone.now()
    )
    frame = syslog_frame(event, fmt="json", hostname="am.example")
    frames, rest = parse_frames(frame + frame[:5])
    assert len(frames) == 1 and rest == frame[:5]
    assert frames[0].startswith(b"<84>1 ")  # authpriv, warning for a failure
    assert json.loads(frames[0].split(b"\xef\xbb\xbf", 1)[1])["id"] == 7


@committed
def test_syslog_with_an_untrusted_certificate_is_refused_with_the_reason(
    stream_settings, admin, syslog, tmp_path
):
    other = self_signed(tmp_path / "..", name="other.test")
    destination = _syslog_destination(admin, syslog)
    StreamDestination.objects.filter(pk=destination.pk).update(ca_certificate=other.cert_pem)
    _events(admin, 2)

    assert delivery.stream_deliver(destination_id=destination.pk) == 0

    destination.refresh_from_db()
    assert "certificate verify failed" in destination.last_error
    assert destination.failures == 1
    assert destination.next_attempt_at is not None
    assert syslog.messages == []


def test_syslog_certificate_for_another_host_name_is_refused(stream_settings, admin, tmp_path):
    elsewhere = self_signed(tmp_path, name="elsewhere.test", ip="192.0.2.1")
    listener = SyslogListener(elsewhere).start()
    try:
        destination = _syslog_destination(admin, listener)  # localhost, trusting that cert

        problem = delivery.stream_test_send(destination=destination, actor=admin)
    finally:
        listener.stop()

    assert problem.startswith("TLS failed: certificate verify failed (Hostname mismatch")
    assert listener.messages == []


@committed
def test_syslog_delivery_survives_the_listener_going_away_and_coming_back(
    stream_settings, admin, syslog
):
    destination = _syslog_destination(admin, syslog)
    first = _events(admin, 3)
    _drain(destination)
    syslog.stop()
    during = _events(admin, 5)

    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    destination.refresh_from_db()
    assert destination.failing_since is not None
    assert "could not connect" in destination.last_error

    syslog.start()  # the same port again
    assert _drain(destination) == 5
    assert first_seen(syslog.ids())[1:] == first + during
    destination.refresh_from_db()
    assert destination.failing_since is None and destination.failures == 0


# --- HTTPS, signed ----------------------------------------------------------------------------


@committed
def test_https_batches_are_signed_and_every_event_arrives_once_in_order(
    stream_settings, admin, receiver
):
    destination = _https_destination(admin, receiver)
    ids = _events(admin, 9)

    assert _drain(destination) == 10

    assert receiver.bad_signatures == 0
    assert receiver.ids()[1:] == ids
    assert len(receiver.requests) == 3  # batches of 4
    assert receiver.requests[0]["content-type"] == "application/x-ndjson"
    assert receiver.requests[0]["webhook-id"].startswith(f"stream_{destination.pk}_")


@committed
def test_a_wrong_secret_does_not_verify(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    receiver.secret = services.new_signing_secret()
    _events(admin, 1)

    delivery.stream_deliver(destination_id=destination.pk)

    assert receiver.bad_signatures == 1
    destination.refresh_from_db()
    assert destination.last_error == "HTTP 401"


@committed
def test_https_failures_half_batches_and_hangs_lose_nothing(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    ids = _events(admin, 6)

    receiver.mode = "fail"
    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    destination.refresh_from_db()
    assert destination.last_error == "HTTP 500"
    assert destination.failures == 1

    receiver.mode = "half"  # takes the first two of four, then answers 500
    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    destination.refresh_from_db()
    assert destination.failures == 2

    receiver.mode, receiver.hang_seconds = "hang", 2.0
    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    destination.refresh_from_db()
    assert destination.last_error.startswith("timed out")

    receiver.mode = "accept"
    assert _drain(destination) == 7
    delivered = receiver.ids()
    assert first_seen(delivered)[1:] == ids  # every event, in order ...
    assert len(delivered) > len(set(delivered))  # ... the half batch's ones twice
    destination.refresh_from_db()
    assert destination.failures == 0 and destination.failing_since is None


@committed
def test_backoff_keeps_a_failing_destination_out_of_the_fan_out(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    receiver.mode = "fail"
    _events(admin, 1)
    now = timezone.now()
    assert destination.pk in delivery.selectors.destinations_due(now=now)

    delivery.stream_deliver(destination_id=destination.pk)

    assert destination.pk not in delivery.selectors.destinations_due(now=timezone.now())
    assert destination.pk in delivery.selectors.destinations_due(
        now=timezone.now() + timedelta(seconds=11)
    )
    assert delivery.backoff_seconds(1) == 10
    assert delivery.backoff_seconds(3) == 40
    assert delivery.backoff_seconds(30) == 600


@committed
def test_a_destination_failing_too_long_is_paused_its_admins_told_and_resumes_from_its_cursor(
    stream_settings, admin, org, receiver
):
    stream_settings.STREAMS_PAUSE_AFTER_HOURS = 1
    analyst = member(org, role=Role.SECURITY_ANALYST)
    destination = _https_destination(admin, receiver)
    ids = _events(admin, 3)
    receiver.mode = "fail"
    delivery.stream_deliver(destination_id=destination.pk)
    StreamDestination.objects.filter(pk=destination.pk).update(
        failing_since=timezone.now() - timedelta(hours=2), lease_until=None
    )

    delivery.stream_deliver(destination_id=destination.pk)

    destination.refresh_from_db()
    assert destination.is_paused
    assert "Paused automatically" in destination.pause_reason
    assert [m.to for m in mail.outbox] == [[admin.email]]
    assert analyst.email not in mail.outbox[0].to
    assert "HTTP 500" in mail.outbox[0].body
    paused = AuditEvent.objects.filter(
        event_type=EventType.SETTINGS_CHANGED, reason="stream destination paused after failing"
    ).get()
    assert paused.organization_id == org.pk
    assert destination.pk not in delivery.selectors.destinations_due(now=timezone.now())

    receiver.mode = "accept"
    assert delivery.stream_deliver(destination_id=destination.pk) == 0  # paused: nothing
    services.stream_destination_resume(destination=destination, actor=admin)
    _drain(destination)
    assert first_seen(receiver.ids())[1:4] == ids


@committed
def test_one_deliverer_at_a_time(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    _events(admin, 2)
    StreamDestination.objects.filter(pk=destination.pk).update(
        lease_token="someone-else", lease_until=timezone.now() + timedelta(minutes=1)
    )

    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    assert receiver.requests == []

    StreamDestination.objects.filter(pk=destination.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)  # that deliverer died
    )
    assert _drain(destination) == 3


@committed
def test_the_fan_out_does_nothing_for_other_tiers(stream_settings, admin, org, receiver):
    destination = _https_destination(admin, receiver)
    Organization.objects.filter(pk=org.pk).update(tier=Tier.MEDIUM_BUSINESS)
    _events(admin, 2)

    assert destination.pk not in delivery.selectors.destinations_due(now=timezone.now())
    assert delivery.stream_deliver(destination_id=destination.pk) == 0


@committed
def test_with_the_broker_down_nothing_is_lost(stream_settings, admin, receiver):
    """Queuing fails fast while the broker is down and the cursor stays in the database: the
    fan-out once it is back queues the delivery, which sends everything."""
    from activity_monitor.celery import app

    destination = _https_destination(admin, receiver)
    ids = _events(admin, 5)
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url="redis://127.0.0.1:18309/3", task_always_eager=False)  # nobody
    app._after_fork()  # drop the connection pools of the other broker
    try:
        assert delivery.streams_deliver_due() == 0
    finally:
        app.conf.update(previous)
        app._after_fork()
    destination.refresh_from_db()
    assert destination.delivered_count == 0

    # The broker is back: the beat's next run finds the destination due, and the worker's
    # task delivers from the stored cursor.
    assert destination.pk in delivery.selectors.destinations_due(now=timezone.now())
    assert stream_deliver_task(destination.pk) == 6
    assert first_seen(receiver.ids())[1:] == ids


# --- Splunk HEC --------------------------------------------------------------------------------


@committed
def test_splunk_hec_gets_events_with_its_token(stream_settings, admin, receiver):
    receiver.hec_token = "11111111-2222-3333-4444-555555555555"  # noqa: S105 - a test token
    destination = services.stream_destination_create(
        organization=admin.membership.organization,
        actor=admin,
        name="Splunk",
        transport=Transport.SPLUNK_HEC,
        fmt="json",
        url=f"http://127.0.0.1:{receiver.port}/services/collector/event",
        secret=receiver.hec_token,
    )
    ids = _events(admin, 2)

    assert _drain(destination) == 3

    assert receiver.ids()[1:] == ids
    assert receiver.lines[1]["sourcetype"] == "activity_monitor:json"
    assert receiver.bad_signatures == 0


# --- S3-compatible storage ------------------------------------------------------------------


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on loopback (no cloud is reachable), with a bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=18301, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:18301"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="not-a-secret",  # noqa: S106 - moto takes any
    ).create_bucket(Bucket="audit-logs")
    yield endpoint
    server.stop()


def _s3_objects(endpoint: str) -> dict[str, list[dict[str, Any]]]:
    import gzip

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="not-a-secret",  # noqa: S106 - moto takes any
    )
    listed = client.list_objects_v2(Bucket="audit-logs").get("Contents", [])
    return {
        item["Key"]: [
            json.loads(line)
            for line in gzip.decompress(
                client.get_object(Bucket="audit-logs", Key=item["Key"])["Body"].read()
            ).splitlines()
        ]
        for item in listed
    }


@committed
def test_s3_gets_gzip_json_lines_one_object_per_batch_under_the_hour(
    stream_settings, admin, s3_endpoint
):
    destination = services.stream_destination_create(
        organization=admin.membership.organization,
        actor=admin,
        name="Lake",
        transport=Transport.S3,
        fmt="json",
        url=s3_endpoint,
        bucket="audit-logs",
        key_prefix="activity/",
        region="us-east-1",
        access_key_id="AKIATEST",
        secret="s3-secret-key",  # noqa: S106 - a test key
    )
    ids = _events(admin, 6)
    StreamDestination.objects.filter(pk=destination.pk).update(bucket="missing")

    assert delivery.stream_deliver(destination_id=destination.pk) == 0
    destination.refresh_from_db()
    assert destination.last_error.startswith("the storage refused: NoSuchBucket")

    StreamDestination.objects.filter(pk=destination.pk).update(bucket="audit-logs")
    assert _drain(destination) == 7

    objects = _s3_objects(s3_endpoint)
    hour = timezone.now().strftime("%Y/%m/%d/%H")
    assert all(
        key.startswith("activity/") and key.endswith(".json.gz") and f"/{destination.pk}-" in key
        for key in objects
    )
    assert any(hour in key for key in objects)
    delivered = [line["id"] for lines in objects.values() for line in lines]
    assert sorted(delivered)[1:] == ids
    for event in AuditEvent.objects.filter(details__setting="stream_destination"):
        assert "AKIATEST" not in json.dumps(event.details)
        assert "s3-secret-key" not in json.dumps(event.details)


# --- Replay ------------------------------------------------------------------------------------


@committed
def test_replay_sends_a_chosen_day_again(stream_settings, admin, org, receiver):
    now = timezone.now()
    old = [
        AuditEvent.objects.create(
            organization=org,
            event_type=EventType.LOGIN_SUCCEEDED,
            actor=admin,
            occurred_at=now - timedelta(days=days),
        ).pk
        for days in (3, 2, 2, 1)
    ]
    _settled()  # the destination starts after them
    destination = _https_destination(admin, receiver)
    new = _events(admin, 2)
    _drain(destination)
    assert not set(old) & set(receiver.ids())  # a new destination starts from now
    receiver.lines.clear()

    day = (now - timedelta(days=2)).date()
    services.stream_destination_replay(destination=destination, actor=admin, since=day)
    _drain(destination)

    replayed = receiver.ids()
    assert old[0] not in replayed
    assert [i for i in replayed if i in old] == old[1:]
    assert set(new) <= set(replayed)
    event = AuditEvent.objects.filter(reason="stream destination replayed").get()
    assert event.details["new"]["replay_from"] == day.isoformat()


@committed
def test_replay_never_moves_the_cursor_forward(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    _events(admin, 3)
    _drain(destination)
    destination.refresh_from_db()
    before = [destination.cursor_txid, destination.cursor_event_id]

    tomorrow = timezone.now().date() + timedelta(days=1)
    services.stream_destination_replay(destination=destination, actor=admin, since=tomorrow)

    replayed = AuditEvent.objects.filter(reason="stream destination replayed").get()
    assert replayed.details["old"]["cursor"] == before
    assert replayed.details["new"]["cursor"] == before


# --- Pages, access and audit -------------------------------------------------------------------

LIST = reverse("streams:stream-list")


def _paths(destination_id: int) -> dict[str, str]:
    return {
        name: reverse(f"streams:stream-{name}", args=[destination_id])
        for name in ("edit", "test", "pause", "replay", "delete")
    }


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_manage_streams(stream_settings, org, admin, receiver, role):
    destination = _https_destination(admin, receiver)
    client = client_as(member(org, role=role))
    assert client.get(LIST).status_code == 403
    assert client.get(reverse("streams:stream-create")).status_code == 403
    for name, path in _paths(destination.pk).items():
        response = client.post(path) if name in ("test", "pause") else client.get(path)
        assert response.status_code == 403, name
    assert StreamDestination.objects.get(pk=destination.pk).paused_at is None


def test_anonymous_is_sent_to_sign_in(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    from django.test import Client

    for path in [LIST, *_paths(destination.pk).values()]:
        response = Client().get(path)
        assert response.status_code == 302 and "/sign-in/" in response["Location"]


def test_another_organization_s_destination_is_not_found(stream_settings, admin, receiver):
    destination = _https_destination(admin, receiver)
    other = client_as(member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR))
    for name, path in _paths(destination.pk).items():
        response = other.post(path) if name in ("test", "pause", "delete") else other.get(path)
        assert response.status_code == 404, name
    assert StreamDestination.objects.filter(pk=destination.pk, paused_at__isnull=True).exists()
    assert receiver.requests == []


def test_other_tiers_see_why_not(stream_settings):
    admin = member(OrganizationFactory.create(tier=Tier.MEDIUM_BUSINESS), Role.ADMINISTRATOR)
    client = client_as(admin)
    response = client.get(LIST)
    assert response.status_code == 200
    assert "part of the Enterprise tier" in response.content.decode()
    response = client.get(reverse("streams:stream-create") + "?transport=syslog")
    assert response.status_code == 403
    assert "Enterprise tier" in response.content.decode()


def test_private_addresses_are_refused_unless_the_development_setting_allows(settings, admin):
    settings.STREAMS_ALLOW_PRIVATE = False
    client = client_as(admin)
    response = client.post(
        reverse("streams:stream-create") + "?transport=syslog",
        {"name": "SIEM", "format": "json", "host": "127.0.0.1", "port": "6514"},
    )
    assert response.status_code == 400
    assert "private, loopback or reserved address" in response.content.decode()
    response = client.post(
        reverse("streams:stream-create") + "?transport=https",
        {"name": "Intake", "format": "json", "url": "http://10.0.0.5/intake"},
    )
    assert response.status_code == 400
    assert "https://" in response.content.decode()
    assert not StreamDestination.objects.exists()


def test_bad_input_is_a_400_with_a_message(stream_settings, admin):
    client = client_as(admin)
    response = client.post(
        reverse("streams:stream-create") + "?transport=syslog",
        {
            "name": "",
            "format": "xml",
            "host": "https://x/",
            "port": "99999",
            "ca_certificate": "no",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    for message in (
        "Name the destination",
        "Select a valid choice",
        "without a scheme",
        "65535",
        "not a PEM certificate",
    ):
        assert message in page
    assert client.get(reverse("streams:stream-create") + "?transport=ftp").status_code == 400
    destination = StreamDestination.objects.create(
        organization=admin.membership.organization,
        name="x",
        transport="syslog",
        host="localhost",
        port=6514,
    )
    response = client.post(
        reverse("streams:stream-replay", args=[destination.pk]), {"since": "1999-01-01"}
    )
    assert response.status_code == 400
    assert "past retention" in response.content.decode()


def test_the_signing_secret_is_shown_once_and_never_in_events(stream_settings, admin, receiver):
    client = client_as(admin)
    response = client.post(
        reverse("streams:stream-create") + "?transport=https",
        {"name": "Intake", "format": "json", "url": receiver.url},
    )
    assert response.status_code == 303
    destination = StreamDestination.objects.get()
    assert destination.secret.startswith("whsec_")
    assert destination.secret in client.get(LIST).content.decode()
    assert destination.secret not in client.get(LIST).content.decode()  # once
    assert destination.secret not in client.get(_paths(destination.pk)["edit"]).content.decode()
    for event in AuditEvent.objects.all():
        assert destination.secret not in json.dumps(event.details)


def test_every_change_is_audited_with_old_and_new_values_and_no_token(
    stream_settings, admin, syslog, receiver
):
    client = client_as(admin)
    token = "hec-token-not-to-be-seen"  # noqa: S105 - a test token
    response = client.post(
        reverse("streams:stream-create") + "?transport=splunk_hec",
        {"name": "Splunk", "format": "json", "url": receiver.url, "secret": token},
    )
    assert response.status_code == 303
    destination = StreamDestination.objects.get()
    paths = _paths(destination.pk)
    edit_page = client.get(paths["edit"]).content.decode()
    assert token not in edit_page
    response = client.post(
        paths["edit"], {"name": "Splunk prod", "format": "json", "url": receiver.url, "secret": ""}
    )
    assert response.status_code == 303
    assert StreamDestination.objects.get().secret == token  # empty keeps it
    client.post(
        paths["edit"],
        {"name": "Splunk prod", "format": "json", "url": receiver.url, "secret": "new-token"},
    )
    assert client.post(paths["pause"]).status_code == 303
    assert client.post(paths["pause"], {"action": "resume"}).status_code == 303
    assert client.post(paths["replay"], {"since": timezone.now().date()}).status_code == 303
    assert client.get(paths["delete"]).status_code == 200  # asks first
    assert StreamDestination.objects.exists()
    assert client.post(paths["delete"]).status_code == 303
    assert not StreamDestination.objects.exists()

    changes = AuditEvent.objects.filter(
        event_type=EventType.SETTINGS_CHANGED, details__setting="stream_destination"
    ).order_by("id")
    assert [e.reason for e in changes] == [
        "stream destination added",
        "stream destination changed",
        "stream destination changed",
        "stream destination paused",
        "stream destination resumed",
        "stream destination replayed",
        "stream destination removed",
    ]
    added, renamed, rekeyed, paused, resumed, _, removed = changes
    assert added.details["old"] is None and added.details["new"]["name"] == "Splunk"
    assert renamed.details["old"]["name"] == "Splunk"
    assert renamed.details["new"]["name"] == "Splunk prod"
    assert "credentials_changed" not in renamed.details
    assert rekeyed.details["credentials_changed"] is True
    assert paused.details["new"]["paused"] is True and resumed.details["new"]["paused"] is False
    assert removed.details["new"] is None
    assert all(e.actor_id == admin.pk for e in changes)
    for event in changes:
        text = json.dumps(event.details)
        assert token not in text and "new-token" not in text


def test_the_test_event_button_says_whether_it_arrived(stream_settings, admin, syslog, tmp_path):
    destination = _syslog_destination(admin, syslog)
    client = client_as(admin)
    response = client.post(_paths(destination.pk)["test"], follow=True)
    assert response.redirect_chain[0][1] == 303
    assert "reached “SIEM”" in response.content.decode()
    assert syslog.messages[-1].json["id"] == 0
    assert syslog.messages[-1].json["details"]["test"] is True
    destination.refresh_from_db()
    before = (destination.cursor_txid, destination.cursor_event_id)

    other = self_signed(tmp_path / "..", name="elsewhere.test")
    StreamDestination.objects.filter(pk=destination.pk).update(ca_certificate=other.cert_pem)
    response = client.post(_paths(destination.pk)["test"], follow=True)
    assert "certificate verify failed" in response.content.decode()
    destination.refresh_from_db()
    assert (destination.cursor_txid, destination.cursor_event_id) == before


@committed
def test_a_webhook_receiver_library_verifies_the_signature(stream_settings, admin, receiver):
    # The receiver's check is the library's own: a tampered body fails it.
    destination = _https_destination(admin, receiver)
    _events(admin, 1)
    delivery.stream_deliver(destination_id=destination.pk)
    headers = receiver.requests[0]
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(destination.secret).verify(b"{}", headers)


@committed
def test_metrics_show_each_destination_s_deliveries_and_lag(stream_settings, admin, receiver):
    from streams.metrics import stream_metrics

    destination = _https_destination(admin, receiver)
    _events(admin, 3)
    _drain(destination)
    _events(admin, 2)

    families = {family.name: family for family in stream_metrics()}
    labels = {
        "organization": str(admin.membership.organization_id),
        "destination": str(destination.pk),
        "transport": "https",
    }

    def value(name: str) -> float:
        (sample,) = [s for s in families[name].samples if s.labels == labels]
        return float(sample.value)

    assert value("activity_monitor_stream_deliveries") == 4
    assert value("activity_monitor_stream_lag_events") == 2
    assert value("activity_monitor_stream_lag_seconds") >= 0
    assert value("activity_monitor_stream_paused") == 0


@committed
@pytest.mark.parametrize("fmt", ["ocsf", "cef"])
def test_sign_ins_arrive_over_syslog_in_the_chosen_format(stream_settings, admin, syslog, fmt):
    destination = _syslog_destination(admin, syslog)
    StreamDestination.objects.filter(pk=destination.pk).update(format=fmt)
    (event_id,) = _events(admin, 1)

    _drain(destination)

    payload = syslog.messages[-1].payload
    if fmt == "ocsf":
        ocsf = json.loads(payload)
        assert ocsf["class_uid"] == 3002 and ocsf["metadata"]["uid"] == str(event_id)
    else:
        assert payload.startswith("CEF:0|") and f"externalId={event_id}" in payload
