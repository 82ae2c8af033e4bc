"""Redis stopped for twelve seconds and started again while people sign in and read (issue 12,
items 10 and 11): no page answers 5xx, the worker and beat live through it, every event of the
scenario is evaluated exactly once within a minute of Redis's return, and an export requested
while Redis was down is finished.

Redis keeps nothing on disk here, so whatever was queued in it when it stopped is gone too: the
database has to say what is left to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .stack import SYSTEM, Stack
from .web import DEMO_PASSWORD, Browser, Journal, signed_in

pytestmark = SYSTEM

OUTAGE_SECONDS = 12
# What the issue promises: evaluated, and the export done, within a minute of Redis's return.
RECOVERY_SECONDS = 60
# The failed-sign-ins rule raises its alert at the 5th failure in 15 minutes; each later one
# counts once on the same alert.
GUESSES = 6
ALERT_THRESHOLD = 5
EVALUATED_TYPES = ("login.failed", "login.succeeded", "session.started")


@dataclass
class Outage:
    journal: Journal = field(repr=False)
    started_at: datetime
    ended_at: datetime
    redis_back: float
    sign_ins: int
    signed_in: int
    export_id: str | None
    worker_alive: bool
    beat_alive: bool
    unevaluated: list[tuple[int, str]] = field(repr=False)
    written_while_down: int
    evaluated_after: float | None
    export: tuple[str, int, int | None, str, str] | None
    export_done_after: float | None


def _unevaluated(stack: Stack, since: datetime, until: datetime) -> list[tuple[int, str]]:
    return stack.rows(
        "SELECT e.id, e.event_type FROM audit_auditevent e "
        "LEFT JOIN alerts_evaluatedevent v ON v.event_id = e.id AND v.evaluated_at IS NOT NULL "
        "WHERE e.occurred_at BETWEEN %s AND %s AND e.event_type = ANY(%s) "
        "AND e.organization_id IS NOT NULL AND v.event_id IS NULL ORDER BY e.id",
        [since, until, list(EVALUATED_TYPES)],
    )


def _export(stack: Stack, export_id: str) -> tuple[str, int, int | None, str, str] | None:
    found = stack.rows(
        "SELECT status, rows_written, rows_expected, file_name, sha256 FROM exports_export "
        "WHERE id = %s",
        [export_id],
    )
    return found[0] if found else None


@pytest.fixture(scope="module")
def outage(stack: Stack) -> Outage:
    stack.ensure_running()
    journal = Journal()
    admin = Browser(stack.base_url, journal=journal)
    alice = Browser(stack.base_url, journal=journal)
    compliance = Browser(stack.base_url, journal=journal)
    changer = Browser(stack.base_url, journal=journal)
    api = Browser(stack.base_url, journal=journal)
    api.session.headers["Authorization"] = f"Bearer {stack.seeded['api_token']}"
    for browser, email in (
        (admin, "admin@acme.test"),
        (alice, "alice@acme.test"),
        (compliance, "compliance@acme.test"),
        (changer, "admin@globex.test"),
    ):
        assert signed_in(browser.sign_in(email)), email
    event_id = stack.value(
        "SELECT max(e.id) FROM audit_auditevent e JOIN accounts_organization o "
        "ON o.id = e.organization_id WHERE o.slug = 'acme'"
    )
    sign_ins: list[bool] = []
    stop = threading.Event()

    def sign_in_anew() -> None:
        sign_ins.append(
            signed_in(Browser(stack.base_url, journal=journal).sign_in("carol@initech.test"))
        )

    pages = [
        lambda: admin.get("/settings/security/audit-log/"),
        lambda: admin.get("/settings/security/audit-log/?outcome=failure"),
        lambda: admin.get(f"/settings/security/audit-log/{event_id}/"),
        lambda: alice.get("/profile/activity/"),
        lambda: api.get("/api/v1/events?limit=20"),
        sign_in_anew,
    ]

    def traffic(offset: int) -> None:
        step = offset
        while not stop.is_set():
            pages[step % len(pages)]()
            step += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=traffic, args=(i * 3,)) for i in range(2)]
    started_at = datetime.now(UTC)
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        stack.stop_redis()
        down_at = time.monotonic()
        down_since = datetime.now(UTC)
        guesser = Browser(stack.base_url, journal=journal)
        for index in range(GUESSES):
            guesser.sign_in("analyst@acme.test", f"guess-{index}")
            time.sleep(0.5)
        export = compliance.get("/settings/security/audit-log/export.csv?outcome=success")
        changer.submit(
            "/profile/password/",
            {
                "old_password": DEMO_PASSWORD,
                "new_password1": "a-new-pass-2026-xyz",
                "new_password2": "a-new-pass-2026-xyz",
            },
        )
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
    finally:
        stack.start_redis()
    redis_back = time.monotonic()
    back_at = datetime.now(UTC)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    ended_at = datetime.now(UTC)

    export_id = None
    if export is not None and export.status_code == 302:
        export_id = parse_qs(urlsplit(export.headers["Location"]).query).get("created", [None])[0]
    if export_id is None:  # the page failed; the export may still have been stored
        found = stack.rows(
            "SELECT x.id::text FROM exports_export x JOIN accounts_user u "
            "ON u.id = x.requested_by_id WHERE u.email = 'compliance@acme.test' "
            "ORDER BY x.created_at DESC LIMIT 1"
        )
        export_id = found[0][0] if found else None

    evaluated_after = export_done_after = None
    deadline = redis_back + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        if evaluated_after is None and not _unevaluated(stack, started_at, ended_at):
            evaluated_after = time.monotonic() - redis_back
        state = _export(stack, export_id) if export_id else None
        if export_done_after is None and state is not None and state[0] == "done":
            export_done_after = time.monotonic() - redis_back
        if evaluated_after is not None and export_done_after is not None:
            break
        time.sleep(1)
    return Outage(
        journal=journal,
        started_at=started_at,
        ended_at=ended_at,
        redis_back=redis_back,
        sign_ins=len(sign_ins),
        signed_in=sum(sign_ins),
        export_id=export_id,
        worker_alive=stack.services["worker"].alive(),
        beat_alive=stack.services["beat"].alive(),
        unevaluated=_unevaluated(stack, started_at, ended_at),
        written_while_down=stack.value(
            "SELECT count(*) FROM audit_auditevent WHERE occurred_at BETWEEN %s AND %s "
            "AND event_type = ANY(%s) AND organization_id IS NOT NULL",
            [down_since, back_at, list(EVALUATED_TYPES)],
        ),
        evaluated_after=evaluated_after,
        export=_export(stack, export_id) if export_id else None,
        export_done_after=export_done_after,
    )


def test_no_page_or_action_answers_a_server_error(outage: Outage) -> None:
    assert [str(answer) for answer in outage.journal.failures()] == []


def test_sign_ins_keep_working(outage: Outage) -> None:
    assert outage.sign_ins > 0
    assert outage.signed_in == outage.sign_ins


def test_the_worker_and_beat_live_through_the_outage(outage: Outage) -> None:
    assert (outage.worker_alive, outage.beat_alive) == (True, True)


def test_every_event_is_evaluated_within_a_minute_of_redis_returning(outage: Outage) -> None:
    assert outage.written_while_down > 0  # sign-ins went on while Redis was down
    assert outage.unevaluated == []
    assert outage.evaluated_after is not None


def test_no_event_is_evaluated_twice(outage: Outage, stack: Stack) -> None:
    """Counted once: the analyst's alert has one count per failure from the 5th on, and no
    alert was raised twice."""
    alerts = stack.rows(
        "SELECT a.count, (SELECT count(*) FROM audit_auditevent r "
        "WHERE r.event_type = 'alert.raised' AND (r.details->>'alert_id')::bigint = a.id) "
        "FROM alerts_alert a JOIN accounts_user u ON u.id = a.subject_user_id "
        "WHERE u.email = 'analyst@acme.test' AND a.kind = 'failed_sign_ins'"
    )
    assert alerts == [(GUESSES - ALERT_THRESHOLD + 1, 1)]
    assert (
        stack.rows(
            "SELECT details->>'alert_id' FROM audit_auditevent WHERE event_type = 'alert.raised' "
            "AND occurred_at >= %s GROUP BY 1 HAVING count(*) > 1",
            [outage.started_at],
        )
        == []
    )


def test_the_export_requested_during_the_outage_is_finished(outage: Outage, stack: Stack) -> None:
    assert outage.export is not None, "the export request was not stored"
    status, written, expected, file_name, sha256 = outage.export
    assert (status, written) == ("done", expected)
    assert outage.export_done_after is not None
    content = (stack.export_root / file_name).read_bytes()
    assert hashlib.sha256(content).hexdigest() == sha256
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert len(rows) == written + 1  # the header and one line per event
    assert sorted(path.name for path in Path(stack.export_root).glob(f"{outage.export_id}*")) == [
        file_name
    ]
