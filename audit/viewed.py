"""Recording that someone looked at the audit log (audit_log.viewed, PCI DSS 10.2.1.3)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache

from .models import EventType
from .services import event_record

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Organization, User

# A person re-running the same filter within this many seconds is one "view" of the log.
VIEWED_DEDUP_SECONDS = getattr(settings, "AUDIT_LOG_VIEWED_DEDUP_SECONDS", 300)


def audit_log_viewed_record(
    *,
    request: HttpRequest,
    organization: Organization,
    looked_at: dict[str, Any],
    actor: User | None,
    actor_label: str = "",
    dedup_key: str,
) -> None:
    """Record audit_log.viewed, once per viewer (dedup_key) and distinct filter per few minutes.

    The actor is whoever looked: the signed-in person, or for the API the token's creator, who
    may since have been deleted (None: the event then names the token by its label only).

    Paging (the cursor) and HTMX swaps of the same filters are the same view. The dedupe lives
    in the cache; with Redis unreachable the cache answers as no cache (`add` succeeds), so every
    view is recorded: more rows for a while, never a view left unrecorded or a failed page.
    """
    digest = hashlib.sha256(json.dumps(looked_at, sort_keys=True).encode()).hexdigest()[:32]
    key = f"audit_log.viewed:{dedup_key}:{digest}"
    if cache.add(key, True, timeout=VIEWED_DEDUP_SECONDS):
        event_record(
            event_type=EventType.AUDIT_LOG_VIEWED,
            actor=actor,
            actor_label=actor_label,
            organization=organization,
            details=looked_at,
            request=request,
        )
