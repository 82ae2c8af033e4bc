"""The Celery application and the one way to queue a task; tasks live in each app's tasks.py."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")

logger = logging.getLogger(__name__)

app = Celery("activity_monitor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(sender: Any = None, **kwargs: Any) -> None:
    """Around each task, what Django does around each request: keep a connection while it is
    usable and younger than CONN_MAX_AGE, close it otherwise, and check it before its next use.

    Celery's own Django fixup closes every connection before and after every task (unless
    CELERY_DB_REUSE_MAX, set in settings so that it never does): a new PostgreSQL connection per
    task cost a worker more CPU than the alert evaluation a task does under a burst.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # in the caller's own thread and transaction (tests, no broker)
    if threading.current_thread() is not threading.main_thread():
        # A thread pool (or a test's in-thread worker): a thread's connections outlive it
        # unseen, so they are closed after each task, as Celery did.
        connections.close_all()
        return
    close_old_connections()


def enqueue(task: Any, *args: Any, countdown: float | None = None) -> bool:
    """Send a task to the broker now, or give up fast; never raises. True if it was sent.

    Every task the app queues goes through here, most from `transaction.on_commit`. A broker that
    is down only delays the work: each task's work is written to the database first, and a beat
    sweep finds and does what was never queued (alerts.evaluation.events_sweep,
    alerts.notifications.notifications_sweep, accounts.notifications.security_notices_sweep,
    exports.services.exports_sweep). The publish does not retry (the broker transport options in
    settings bound the connect), so a request never waits on a dead Redis.
    """
    try:
        task.apply_async(args=args, countdown=countdown, retry=False)
    except Exception:  # broker down (or, in eager mode, the task itself failed)
        logger.warning(
            "task %s%r did not run now; the periodic sweep will pick it up",
            task.name,
            args,
            exc_info=True,
        )
        return False
    return True
