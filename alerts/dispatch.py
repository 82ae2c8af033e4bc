"""Handing committed events to the rule evaluation task without making the request wait.

Publishing a Celery message costs about as much Python time as the rest of a sign-in's
recording. So a request only drops the event ids into an in-process queue; a daemon thread sends
them, many per message: whatever arrives within LINGER_SECONDS of the first id goes together, in
messages of at most MAX_BATCH ids. Nothing depends on the message arriving: the events are
committed, and the beat sweep (alerts.services.events_sweep) evaluates any that no task did, e.g.
because the process died with ids still queued or the broker was down.

With task_always_eager (no broker: `make run`, the tests) the task runs at once, in the caller's
thread, as before.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

MAX_BATCH = 500
# Half a second of alert latency buys one message per many sign-ins: a Celery publish costs
# about a millisecond of CPU, more than the rest of recording a sign-in's events.
LINGER_SECONDS = 0.5
EXIT_FLUSH_SECONDS = 2.0


class BatchingPublisher:
    """Sends submitted ids through `send` from one background thread per process, in batches."""

    def __init__(
        self,
        send: Callable[[list[int]], object],
        *,
        max_batch: int = MAX_BATCH,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._linger = linger
        self._queue: queue.Queue[list[int]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, ids: Sequence[int]) -> None:
        if ids:
            self._started()
            self._queue.put(list(ids))

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait until every submitted id was handed to `send`; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _started(self) -> None:
        # A forked worker (gunicorn, Celery prefork) inherits the object but not the thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                if self._pid != os.getpid():
                    self._queue = queue.Queue()  # the parent's queued ids are the parent's
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="alerts-publisher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batches = [self._queue.get()]
            # Gather by sleeping, not by waiting on the queue: a waiting thread would be woken
            # (and take the interpreter lock from the request) by every submit of the linger.
            time.sleep(self._linger)
            while True:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ids = [event_id for batch in batches for event_id in batch]
            try:
                for start in range(0, len(ids), self._max_batch):
                    self._send(ids[start : start + self._max_batch])
            except Exception:  # the sweep evaluates these later; the thread must live on
                logger.exception("could not hand %d events to the evaluation task", len(ids))
            finally:
                for _ in batches:
                    self._queue.task_done()


def _send_for_evaluation(ids: list[int]) -> None:
    from activity_monitor.celery import enqueue

    from .tasks import events_evaluate

    enqueue(events_evaluate, ids)


publisher = BatchingPublisher(_send_for_evaluation)
atexit.register(publisher.flush)


def evaluation_request(ids: Sequence[int]) -> None:
    """Ask for these committed events to be evaluated: now when eager, else in the background."""
    from activity_monitor.celery import app

    if app.conf.task_always_eager:
        _send_for_evaluation(list(ids))
    else:
        publisher.submit(ids)
