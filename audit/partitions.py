"""The events table's monthly partitions on PostgreSQL (audit migration 0013).

Partitions are made ahead by a database function that runs as the tables' owner: the app's role
may call it but owns nothing, so it can make a month but never drop or detach one. A month that
has no partition when its first event comes is not an error: the event waits in the default
partition and moves into its month when the partition is made. SQLite has one plain table.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)


def partitions_ensure(*, months_ahead: int | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Make the partitions of this month (UTC) and of the months ahead that are missing; how
    many were made. Nothing on SQLite, or before the table was partitioned."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    ahead = settings.AUDIT_PARTITIONS_AHEAD_MONTHS if months_ahead is None else months_ahead
    with connection.cursor() as cursor:
        # Raw: a call of the owner's function (audit migration 0013), which the ORM cannot say.
        cursor.execute(
            "SELECT to_regprocedure('audit_events_partitions_ensure(integer)') IS NOT NULL"
        )
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT audit_events_partitions_ensure(%s)", [ahead])
        made: int = cursor.fetchone()[0]
    if made:
        logger.info("events table: %d monthly partitions made ahead", made)
    return made


def months_ensure(*, first: datetime, last: datetime, using: str = DEFAULT_DB_ALIAS) -> int:
    """Make the partitions of every month from `first` to `last` (UTC) that are missing, past
    months included; how many were made. For loading history (demo data, benchmarks): only the
    tables' owner may (audit_events_partition_ensure is not granted to the app's role), so it
    makes nothing for anyone else, and their rows wait in the default partition."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        # Raw: the owner's function, once per month of a generated series.
        cursor.execute(
            "SELECT to_regprocedure('audit_events_partition_ensure(date)') IS NOT NULL "
            "AND has_function_privilege('audit_events_partition_ensure(date)', 'EXECUTE')"
        )
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(
            "SELECT count(*) FILTER (WHERE audit_events_partition_ensure(month::date)) "
            "FROM generate_series(date_trunc('month', %s::timestamptz AT TIME ZONE 'UTC'), "
            "date_trunc('month', %s::timestamptz AT TIME ZONE 'UTC'), interval '1 month') "
            "AS month",
            [first, last],
        )
        made: int = cursor.fetchone()[0]
    return made
