"""Streams: events delivered per second by one worker, and p95 lag while events arrive.

    SECRET_KEY=x BENCH_DATABASE_URL=postgres://.../am_bench_streams \
        .venv/bin/python bench/streams.py
    ... bench/streams.py --events 200 --seconds 3 --rate 50     # a smoke run

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/am_bench_streams) is migrated
and gets an organization of its own ("bench-streams", Enterprise); its events are added, never
deleted. Receivers are local and started here: the tests' TLS syslog listener and an HTTP
receiver (tests/streams_support.py), both on loopback (STREAMS_ALLOW_PRIVATE).

1. Throughput, per transport (HTTPS, syslog): --events events are written, then one deliverer
   (streams.delivery.stream_deliver, the worker task's service) sends them from the start, in
   batches of STREAMS_BATCH_SIZE; prints events per second. Target: 20,000/s per worker. The
   receiver runs in a process of its own, as a SIEM does: it shares the machine's CPUs but not
   the deliverer's interpreter (with --same-process, a thread of the deliverer's, as before).
2. Lag: a writer commits --rate events per second (in tenths of a second) for --seconds while
   the deliverer runs as the beat drives it (a run every STREAMS fan-out period, 2 s, each
   until caught up); the lag of an event is its arrival at the receiver minus its time of
   recording. Prints p50, p95 and the maximum. Target: p95 at most 5 s at 500 events/s.

Never run it on the shared development machine at full size: it loads the database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import environ_defaults  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/am_bench_streams"
FAN_OUT_SECONDS = 2.0  # as the beat schedule in settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per throughput run")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the lag run")
    parser.add_argument("--rate", type=int, default=500, help="events per second in the lag run")
    parser.add_argument("--batch", type=int, default=1000, help="STREAMS_BATCH_SIZE")
    parser.add_argument(
        "--same-process", action="store_true", help="throughput receivers as threads of ours"
    )
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    environ_defaults(database_url=url)
    os.environ["STREAMS_ALLOW_PRIVATE"] = "1"
    os.environ["STREAMS_BATCH_SIZE"] = str(args.batch)
    os.environ["STREAMS_TASK_BUDGET_SECONDS"] = "3600"
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connections

    connections.close_all()  # no session of ours left in a transaction (the feed's horizon)
    print(f"CPUs: {os.cpu_count()}, database: {url.rsplit('/', 1)[-1]}, batch: {args.batch}")
    organization = _organization()
    receiving = _receiver if args.same_process else _receiver_process
    for transport in ("https", "syslog"):
        with receiving(transport) as (receiver, target):
            _throughput(organization, transport, target, receiver, args.events)
    with _receiver("https") as (receiver, target):
        _lag(organization, target, receiver, args.rate, args.seconds)


def _organization():
    from accounts.models import Organization, Tier

    organization, _ = Organization.objects.get_or_create(
        slug="bench-streams", defaults={"name": "Bench streams", "tier": Tier.ENTERPRISE}
    )
    return organization


def _write(organization, count: int) -> list[int]:
    """Commit `count` events of the organization (one transaction per 1,000); their ids."""
    from django.db import transaction

    from audit.models import AuditEvent, EventType

    ids: list[int] = []
    for start in range(0, count, 1000):
        with transaction.atomic():
            made = AuditEvent.objects.bulk_create(
                AuditEvent(
                    organization=organization,
                    event_type=EventType.LOGIN_SUCCEEDED,
                    actor_label=f"person{n % 500}@bench.test",
                    ip_address="198.51.100.7",
                    details={"n": n},
                )
                for n in range(start, min(start + 1000, count))
            )
        ids.extend(event.pk for event in made)
    return ids


class _receiver:
    """A local receiver for the transport, and where a destination reaches it."""

    def __init__(self, transport: str) -> None:
        self.transport = transport

    def __enter__(self):
        from tests.streams_support import HttpReceiver, SyslogListener, self_signed

        if self.transport == "https":
            self.server = HttpReceiver().start()
            return self.server, {"url": self.server.url}
        certificate = self_signed(Path(tempfile.mkdtemp(prefix="bench-streams-")))
        self.server = SyslogListener(certificate).start()
        return self.server, {
            "host": "localhost",
            "port": self.server.port,
            "ca_certificate": certificate.cert_pem,
        }

    def __exit__(self, *exc) -> None:
        self.server.stop()


def _serve_apart(transport: str, pipe: Any, count: Any, stop: Any) -> None:
    """The child of _receiver_process: a receiver, and how many events it holds, every 5 ms."""
    with _receiver(transport) as (receiver, target):
        pipe.send(target)
        while not stop.is_set():
            count.value = _received(receiver)
            time.sleep(0.005)


class _receiver_process:
    """_receiver in a process of its own (forked before any delivery; it never touches the
    database); what arrived is counted in a shared integer."""

    def __init__(self, transport: str) -> None:
        self.transport = transport

    def __enter__(self):
        from django.db import connections

        connections.close_all()  # nothing of ours is shared with the child
        context = multiprocessing.get_context("fork")
        self.count = context.Value("q", 0, lock=False)
        self.stop = context.Event()
        ours, theirs = context.Pipe()
        self.process = context.Process(
            target=_serve_apart, args=(self.transport, theirs, self.count, self.stop), daemon=True
        )
        self.process.start()
        return self, ours.recv()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.process.join(10)


def _destination(organization, transport: str, target: dict[str, Any], *, from_start: bool):
    from api.feed import START, feed_end
    from audit.selectors import events_for_organization
    from streams.models import StreamDestination

    StreamDestination.objects.filter(organization=organization).delete()
    txid, event_id = (
        START if from_start else feed_end(events_for_organization(organization=organization))
    )
    return StreamDestination.objects.create(
        organization=organization,
        name=f"bench {transport}",
        transport=transport,
        cursor_txid=txid,
        cursor_event_id=event_id,
        secret="whsec_" + "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2g=",
        **target,
    )


def _horizon_passes(organization, seconds: float = 60) -> None:
    """Wait until the feed serves the events written: another session of the server may hold
    its horizon back for a moment (api.feed)."""
    from django.db.models import Max

    from api.feed import visibility_horizon
    from audit.models import AuditEvent

    last = AuditEvent.objects.filter(organization=organization).aggregate(m=Max("txid"))["m"]
    deadline = time.monotonic() + seconds
    while last is not None and (visibility_horizon() or 0) <= last:
        if time.monotonic() > deadline:
            print("  (a long transaction on the server holds the feed's horizon)")
            return
        time.sleep(0.05)


def _received(receiver) -> int:
    if isinstance(receiver, _receiver_process):
        return int(receiver.count.value)
    return len(receiver.lines) if hasattr(receiver, "lines") else len(receiver.messages)


def _throughput(organization, transport, target, receiver, count: int) -> None:
    from audit.models import AuditEvent
    from streams.delivery import stream_deliver

    _write(organization, count)
    destination = _destination(organization, transport, target, from_start=False)
    # From just before the events written above: the same count every run.
    first = (
        AuditEvent.objects.filter(organization=organization)
        .order_by("-txid", "-id")
        .values_list("txid", "id")[count - 1]
    )
    type(destination).objects.filter(pk=destination.pk).update(
        cursor_txid=first[0], cursor_event_id=first[1] - 1
    )
    _horizon_passes(organization)
    started = time.perf_counter()
    delivered = 0
    while delivered < count:
        sent = stream_deliver(destination_id=destination.pk)
        if not sent:
            break
        delivered += sent
    took = time.perf_counter() - started
    deadline = time.monotonic() + 10
    while _received(receiver) < delivered and time.monotonic() < deadline:
        time.sleep(0.01)
    destination.refresh_from_db()
    if destination.last_error:
        print(f"  last error: {destination.last_error}")
    print(
        f"{transport:>7}: {delivered} events in {took:.2f} s = {delivered / took:,.0f} events/s "
        f"(received {_received(receiver)})"
    )


def _lag(organization, target, receiver, rate: int, seconds: float) -> None:
    from django.db import connections

    from audit.models import AuditEvent
    from streams.delivery import stream_deliver

    destination = _destination(organization, "https", target, from_start=False)
    arrivals: dict[int, float] = {}
    original = receiver.lines

    class Stamping(list[dict[str, Any]]):
        def extend(self, lines) -> None:  # the receiver's thread: note when each arrived
            now = time.time()
            for line in lines:
                arrivals.setdefault(line["id"], now)
            super().extend(lines)

    receiver.lines = Stamping(original)
    stop = threading.Event()

    def writer() -> None:
        try:
            per_tick = max(rate // 10, 1)
            next_tick = time.monotonic()
            while not stop.is_set():
                _write(organization, per_tick)
                next_tick += 0.1
                time.sleep(max(next_tick - time.monotonic(), 0))
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        run_started = time.monotonic()
        stream_deliver(destination_id=destination.pk)
        time.sleep(max(FAN_OUT_SECONDS - (time.monotonic() - run_started), 0))
    stop.set()
    thread.join()
    while stream_deliver(destination_id=destination.pk):
        pass
    recorded = dict(
        AuditEvent.objects.filter(pk__in=list(arrivals)).values_list("pk", "occurred_at")
    )
    lags = sorted(arrivals[pk] - at.timestamp() for pk, at in recorded.items())
    if not lags:
        print("lag: nothing arrived")
        return
    p95 = lags[int(0.95 * (len(lags) - 1))]
    print(
        f"    lag at {rate} events/s for {seconds:g} s: {len(lags)} events, "
        f"p50 {statistics.median(lags):.2f} s, p95 {p95:.2f} s, max {lags[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
