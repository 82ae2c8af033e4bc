"""A paginator that never counts more than it needs: the events table holds tens of millions."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import QuerySet

from .models import AuditEvent

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator[AuditEvent]):
    """Counts at most COUNT_CAP rows (a LIMITed subquery), so page counts stay cheap."""

    object_list: QuerySet[AuditEvent]

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: COUNT_CAP + 1].count()
