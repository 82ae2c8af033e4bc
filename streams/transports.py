"""How a batch of events leaves: syslog over TLS, Splunk's HTTP Event Collector, signed HTTPS,
S3-compatible storage.

Every connection goes through outbound (the one vetted way out: public addresses only unless
STREAMS_ALLOW_PRIVATE, TLS checked against the host name). A transport either delivers the
whole batch or raises DeliveryFailed with a reason for the page; the caller then sends the same
batch again later, so receivers see duplicates (every payload carries our event id), never gaps.

Syslog has no acknowledgement: a batch counts as delivered once TCP took all of it. A receiver
that dies after reading part of a write loses what it had not yet stored; HTTPS and HEC answer
per batch, and only a 2xx counts.
"""

from __future__ import annotations

import gzip
import json
import ssl
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import standardwebhooks
from django.conf import settings

from audit.models import AuditEvent, Outcome
from outbound import http as outbound_http
from outbound import tls as outbound_tls

from .formats import render
from .models import StreamDestination, Transport

# RFC 5424: facility 10 (security/authorization, "authpriv"); severity 6 (informational) for
# successes and 4 (warning) for failures.
SYSLOG_FACILITY = 10
APP_NAME = "activity-monitor"
BOM = "\ufeff".encode()
# Splunk's default HEC path when the URL names none.
HEC_PATH = "/services/collector/event"
RESPONSE_READ_BYTES = 4096


class DeliveryFailed(Exception):
    """The batch was not (wholly) delivered; the message says why, for the destination's page."""


def _payload_text(event: AuditEvent, fmt: str) -> str:
    rendered = render(event, fmt)
    if isinstance(rendered, str):
        return rendered
    return json.dumps(rendered, separators=(",", ":"), default=str)


def _payload(event: AuditEvent, fmt: str) -> dict[str, Any] | str:
    return render(event, fmt)


def _hostname() -> str:
    return urlsplit(settings.ALERTS_BASE_URL).hostname or "-"


def syslog_frame(event: AuditEvent, *, fmt: str, hostname: str) -> bytes:
    """One RFC 5424 message with RFC 6587 octet-counting framing: "LEN SP MSG"."""
    severity = 4 if event.outcome == Outcome.FAILURE else 6
    stamp = event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    msgid = "".join(ch for ch in event.event_type if 33 <= ord(ch) <= 126)[:32] or "-"
    header = (
        f"<{SYSLOG_FACILITY * 8 + severity}>1 {stamp.replace('+00:00', 'Z')} {hostname} "
        f"{APP_NAME} - {msgid} - "
    )
    message = header.encode() + BOM + _payload_text(event, fmt).encode()
    return f"{len(message)} ".encode() + message


def _syslog(destination: StreamDestination, events: Sequence[AuditEvent]) -> None:
    hostname = _hostname()
    data = b"".join(syslog_frame(e, fmt=destination.format, hostname=hostname) for e in events)
    timeout = settings.STREAMS_TIMEOUT_SECONDS
    try:
        sock = outbound_tls.connect(
            destination.host,
            destination.port or 6514,
            allow_private=settings.STREAMS_ALLOW_PRIVATE,
            timeout=timeout,
            ca_data=destination.ca_certificate or None,
        )
    except (outbound_http.Refused, outbound_http.RequestFailed) as exc:
        raise DeliveryFailed(str(exc)) from None
    try:
        sock.settimeout(timeout)
        sock.sendall(data)
    except TimeoutError:
        sock.close()
        raise DeliveryFailed(f"timed out after {timeout:g} s while sending") from None
    except OSError as exc:
        sock.close()
        raise DeliveryFailed(f"the connection failed while sending: {exc}") from None
    _syslog_close(sock)


def _syslog_close(sock: ssl.SSLSocket) -> None:
    """End the connection so that the receiver reads everything sent.

    Closing at once would lose data: a TLS 1.3 receiver sends session tickets after the
    handshake, and a socket closed with unread data answers with a reset, which makes the
    receiver's system discard what its program had not read yet. So: close_notify (after all
    the data, in order), reading what comes until the receiver closes too. A reset then means
    it did not read everything; a receiver that keeps the connection open costs the timeout
    (STREAMS_TIMEOUT_SECONDS) per batch, and has had all of it acknowledged by TCP.
    """
    try:
        sock.unwrap()
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, TimeoutError):
        pass  # closed after reading our close_notify, or alive and silent
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise DeliveryFailed(f"the receiver reset the connection: {exc}") from None
    except (ssl.SSLError, OSError) as exc:
        raise DeliveryFailed(f"the connection failed while closing: {exc}") from None
    finally:
        sock.close()


def _post(destination: StreamDestination, url: str, body: bytes, headers: dict[str, str]) -> None:
    timeout = settings.STREAMS_TIMEOUT_SECONDS
    try:
        response = outbound_http.request(
            "POST",
            url,
            body=body,
            headers={"User-Agent": "ActivityMonitor-Stream/1", **headers},
            allow_private=settings.STREAMS_ALLOW_PRIVATE,
            timeout=timeout,
            max_response_bytes=RESPONSE_READ_BYTES,
            ca_data=destination.ca_certificate or None,
        )
    except outbound_http.Refused as exc:
        raise DeliveryFailed(str(exc)) from None
    except outbound_http.RequestFailed as exc:
        if exc.timed_out:
            raise DeliveryFailed(f"timed out after {timeout:g} s") from None
        raise DeliveryFailed(f"connection failed: {exc}") from None
    if 300 <= response.status < 400:
        raise DeliveryFailed(f"HTTP {response.status}: redirects are not followed")
    if not 200 <= response.status < 300:
        detail = response.body[:200].decode("utf-8", "replace").strip()
        raise DeliveryFailed(f"HTTP {response.status}" + (f": {detail}" if detail else ""))


def batch_id(destination: StreamDestination, events: Sequence[AuditEvent]) -> str:
    """The same batch sent again has the same id (receivers may deduplicate by it too)."""
    return f"stream_{destination.pk}_{events[0].pk}_{events[-1].pk}"


def _https(destination: StreamDestination, events: Sequence[AuditEvent]) -> None:
    body = b"".join(_payload_text(e, destination.format).encode() + b"\n" for e in events)
    message_id = batch_id(destination, events)
    now = datetime.now(UTC)
    headers = {
        "Content-Type": "application/x-ndjson",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(destination.secret).sign(
            message_id, now, body
        ),
    }
    _post(destination, destination.url, body, headers)


def hec_url(url: str) -> str:
    """The collector endpoint: the URL as given, or Splunk's event path when it names none."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return parts._replace(path=HEC_PATH).geturl()
    return url


def _splunk_hec(destination: StreamDestination, events: Sequence[AuditEvent]) -> None:
    hostname = _hostname()
    lines = [
        json.dumps(
            {
                "time": round(e.occurred_at.timestamp(), 6),
                "host": hostname,
                "source": APP_NAME,
                "sourcetype": f"activity_monitor:{destination.format}",
                "event": _payload(e, destination.format),
            },
            separators=(",", ":"),
            default=str,
        ).encode()
        for e in events
    ]
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Splunk {destination.secret}",
    }
    _post(destination, hec_url(destination.url), b"\n".join(lines), headers)


def s3_key(destination: StreamDestination, events: Sequence[AuditEvent]) -> str:
    """Where a batch goes: prefix/YYYY/MM/DD/HH/ of its first event's hour (UTC), named by the
    destination and the batch's first and last event ids, so a batch sent again replaces its
    own object instead of adding a copy."""
    hour = events[0].occurred_at.astimezone(UTC)
    name = f"{hour:%Y/%m/%d/%H}/{destination.pk}-{events[0].pk}-{events[-1].pk}.json.gz"
    prefix = destination.key_prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def _s3(destination: StreamDestination, events: Sequence[AuditEvent]) -> None:
    # botocore connects by itself: the endpoint is vetted here, before each batch, as at saving
    # (it cannot be pinned to the vetted address as outbound.http does).
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    problem = outbound_http.url_problem(
        destination.url, allow_private=settings.STREAMS_ALLOW_PRIVATE
    )
    if problem:
        raise DeliveryFailed(problem)
    body = gzip.compress(
        b"".join(_payload_text(e, destination.format).encode() + b"\n" for e in events), mtime=0
    )
    timeout = settings.STREAMS_TIMEOUT_SECONDS
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca_file:
        verify: bool | str = True
        if destination.ca_certificate:
            ca_file.write(destination.ca_certificate)
            ca_file.flush()
            verify = ca_file.name
        client = boto3.client(
            "s3",
            endpoint_url=destination.url,
            region_name=destination.region or "us-east-1",
            aws_access_key_id=destination.access_key_id,
            aws_secret_access_key=destination.secret,
            verify=verify,
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
                proxies={},
            ),
        )
        try:
            client.put_object(
                Bucket=destination.bucket,
                Key=s3_key(destination, events),
                Body=body,
                ContentType="application/gzip",
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DeliveryFailed(
                f"the storage refused: {error.get('Code', '?')} {error.get('Message', '')}".strip()
            ) from None
        except BotoCoreError as exc:
            raise DeliveryFailed(f"connection failed: {exc}") from None


SENDERS = {
    Transport.SYSLOG: _syslog,
    Transport.HTTPS: _https,
    Transport.SPLUNK_HEC: _splunk_hec,
    Transport.S3: _s3,
}


def send(destination: StreamDestination, events: Sequence[AuditEvent]) -> float:
    """Deliver the whole batch or raise DeliveryFailed; the seconds it took."""
    started = time.monotonic()
    if events:
        SENDERS[Transport(destination.transport)](destination, events)
    return time.monotonic() - started
