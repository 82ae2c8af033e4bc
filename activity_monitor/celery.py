"""The Celery application and the one way to queue a task; tasks live in each app's tasks.py."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")

logger = logging.getLogger(__name__)

app = Celery("activity_monitor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
