"""A Celery worker killed with SIGKILL in the middle of a task (issue 12, items 10 and 11):
nothing lost, nothing done twice.

Two deaths: the pool process running a 600-event evaluation batch, stopped half-way by a lock
the test holds (the worker's main process sees it die and the message goes back to the
queue), and the whole worker in the middle of a 300,000-row export (nothing acknowledges or
gives back anything; a restart policy starts a new worker, as docker-compose's would).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import signal
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from alerts.evaluation import subject_lock_key

from .stack import SYSTEM, Stack, wait_for
from .web import Browser, signed_in

pytestmark = SYSTEM

# An evaluation batch whose pool process died goes back to the queue at once: done within a
# minute. A worker that died whole tells no one: its export is known dead only after a silence
# (EXPORTS_STALE_SECONDS, a minute) and then rebuilt by the next sweep, so within two.
RECOVERY_SECONDS = 60
DEAD_WORKER_RECOVERY_SECONDS = 120
ALERT_THRESHOLD = 5  # the failed-sign-ins rule's default: its alert comes at the 5th failure


@dataclass
class KilledBatch:
    total: int
    evaluated_at_kill: int
    evaluated_after: float | None


def _evaluated(stack: Stack, ids: list[int]) -> int:
    count: int = stack.value(
        "SELECT count(*) FROM alerts_evaluatedevent "
        "WHERE event_id = ANY(%s) AND evaluated_at IS NOT NULL",
        [ids],
    )
    return count


def _running_pid(stack: Stack, task_id: str) -> int | None:
    """The pool process running the task, as the worker reports it."""
    for tasks in (stack.celery.control.inspect(timeout=0.5).active() or {}).values():
        for task in tasks:
            if task["id"] == task_id:
                return task["worker_pid"]
    return None


@pytest.fixture(scope="module")
def killed_batch(stack: Stack) -> KilledBatch:
    """The batch's first half is one member's failures, its second half another's. The test
    holds the lock the evaluator takes before writing the second member's alert, so the batch
    stops exactly half-way, evaluated and committed up to there, wherever the machine's speed
    would have put it; then its pool process is killed and the lock let go."""
    stack.ensure_running()
    ids = stack.seeded["batch_event_ids"]
    second_user_id = stack.seeded["batch_user_ids"][1]
    rule_id = stack.value(
        "SELECT r.id FROM alerts_alertrule r JOIN accounts_organization o "
        "ON o.id = r.organization_id WHERE o.slug = 'acme' AND r.kind = 'failed_sign_ins'"
    )
    lock = subject_lock_key(rule_id, f"user:{second_user_id}")
    with psycopg.connect(stack.roles.owner_url, autocommit=True) as holder:
        # Raw: the evaluator's advisory lock (alerts.evaluation), held by this session.
        holder.execute("SELECT pg_advisory_lock(%s)", [lock])
        task = stack.celery.send_task("alerts.tasks.events_evaluate", args=[ids])
        pid = wait_for(lambda: _running_pid(stack, task.id), timeout=30, what="the batch running")
        half = len(ids) // 2
        wait_for(lambda: _evaluated(stack, ids) >= half, timeout=60, what="the batch half-way")
        waiting = wait_for(
            lambda: stack.value(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                # This stack's database only: other tests run beside it (pytest-xdist).
                "AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            timeout=30,
            what="the batch waiting for the second member's lock",
        )
        assert waiting == 1
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        evaluated_at_kill = _evaluated(stack, ids)
        holder.execute("SELECT pg_advisory_unlock(%s)", [lock])
    evaluated_after = None
    while time.monotonic() < killed_at + RECOVERY_SECONDS:
        if _evaluated(stack, ids) == len(ids):
            evaluated_after = time.monotonic() - killed_at
            break
        time.sleep(0.5)
    return KilledBatch(
        total=len(ids), evaluated_at_kill=evaluated_at_kill, evaluated_after=evaluated_after
    )


def test_the_batch_was_killed_half_way(killed_batch: KilledBatch) -> None:
    assert killed_batch.evaluated_at_kill == killed_batch.total // 2


def test_a_batch_whose_process_was_killed_is_evaluated_in_full(killed_batch: KilledBatch) -> None:
    assert killed_batch.evaluated_after is not None


def test_a_batch_whose_process_was_killed_counts_each_event_once(
    killed_batch: KilledBatch, stack: Stack
) -> None:
    alerts = stack.rows(
        "SELECT a.subject_user_id, a.count, (SELECT count(*) FROM audit_auditevent r "
        "WHERE r.event_type = 'alert.raised' AND (r.details->>'alert_id')::bigint = a.id) "
        "FROM alerts_alert a WHERE a.subject_user_id = ANY(%s) AND a.kind = 'failed_sign_ins' "
        "ORDER BY a.subject_user_id",
        [stack.seeded["batch_user_ids"]],
    )
    # Each member's failures from the 5th on match: one alert each, raised once, counted once
    # per failure.
    each = killed_batch.total // 2
    assert alerts == [
        (user_id, each - ALERT_THRESHOLD + 1, 1)
        for user_id in sorted(stack.seeded["batch_user_ids"])
    ]


@dataclass
class KilledExport:
    export_id: str
    status_at_kill: str
    done_after: float | None
    files_before: set[str]


def _export_state(stack: Stack, export_id: str) -> tuple[str, int]:
    [state] = stack.rows(
        "SELECT status, rows_written FROM exports_export WHERE id = %s", [export_id]
    )
    return state


@pytest.fixture(scope="module")
def killed_export(stack: Stack) -> KilledExport:
    stack.ensure_running()
    # Files only: the compliance reports keep a folder of their own (reports/) in the same root.
    files_before = {path.name for path in stack.export_root.iterdir() if path.is_file()}
    administrator = Browser(stack.base_url)
    assert signed_in(administrator.sign_in(stack.seeded["export_administrator"]))
    response = administrator.get("/settings/security/audit-log/export.csv")
    assert response is not None and response.status_code == 302, response
    [export_id] = parse_qs(urlsplit(response.headers["Location"]).query)["created"]

    def writing() -> str | None:
        """The export's status once its file (under whatever name) has rows in it."""
        started = any(path.stat().st_size > 0 for path in stack.export_root.glob(f"{export_id}*"))
        return _export_state(stack, export_id)[0] if started else None

    status = wait_for(writing, timeout=60, what="the export half-way", every=0.02)
    stack.services["worker"].kill()
    killed_at = time.monotonic()
    stack.start_worker()
    done_after = None
    while time.monotonic() < killed_at + DEAD_WORKER_RECOVERY_SECONDS:
        if _export_state(stack, export_id)[0] == "done":
            done_after = time.monotonic() - killed_at
            break
        time.sleep(0.5)
    return KilledExport(
        export_id=export_id, status_at_kill=status, done_after=done_after, files_before=files_before
    )


def test_the_export_was_killed_half_way(killed_export: KilledExport) -> None:
    assert killed_export.status_at_kill == "running"


def test_an_export_whose_worker_was_killed_is_finished(killed_export: KilledExport) -> None:
    assert killed_export.done_after is not None


def test_an_export_whose_worker_was_killed_has_every_row_once(
    killed_export: KilledExport, stack: Stack
) -> None:
    [(status, written, file_name, sha256)] = stack.rows(
        "SELECT status, rows_written, file_name, sha256 FROM exports_export WHERE id = %s",
        [killed_export.export_id],
    )
    assert status == "done"
    content = (stack.export_root / file_name).read_bytes()
    assert hashlib.sha256(content).hexdigest() == sha256
    rows = list(csv.reader(io.StringIO(content.decode())))
    # The generated events, and those of the administrator's sign-in and export request.
    assert len(rows) - 1 == written > stack.seeded["export_events"]
    # No partial file of the killed run is left beside it.
    files_now = {path.name for path in stack.export_root.iterdir() if path.is_file()}
    assert files_now - killed_export.files_before == {file_name}
