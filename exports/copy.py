"""CSV of events written by PostgreSQL: COPY (SELECT ...) TO STDOUT WITH (FORMAT csv).

The SELECT is the queryset's own, compiled by Django: its scope, filters and order, with one
column per CSV column, each an expression that applies the brief's rules (exports/csv.py states
them for the Python writer, and the tests hold these bytes to that writer's). One definition of
the filters, then: `query.sql_with_params()` gives the SQL and parameters Django's compiler
hands its cursor's execute(). Django does not promise that pair runs on every backend as is
(str(query) quotes nothing, and some backends bind in their own way), but on PostgreSQL with
psycopg 3 Django's cursor is a ClientCursor that merges the parameters into the SQL itself, and
its mogrify() is that very merge: the SELECT inside the COPY is byte for byte what Django sends
when it runs the queryset. exports.services.csv_chunks takes this path on PostgreSQL only.

- a text cell is NULL when empty (COPY quotes an empty string, Python's writer does not), and
  gets an apostrophe before a formula start;
- occurred_at is written in UTC as Python's isoformat(timespec="microseconds");
- details is compact JSON with sorted keys, by the functions of exports migration 0003;
- in a person's own Activity Log, the fields audit.member_view hides of someone else's action
  are hidden here alike.

Only the row terminator is not the database's to choose: COPY ends a row with "\\n", Python's
writer with "\\r\\n", so each row's last byte is replaced as it arrives. PostgreSQL sends one
CopyData message per row (its protocol documentation, "COPY Operations"), which psycopg's Copy
hands over one at a time: that also counts the rows exactly, whatever newlines a cell holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Expression, F, Field, Func, JSONField, Q, TextField, Value
from django.db.models.expressions import Case, When

from audit.member_view import (
    ACTOR_CLIENT_PATHS,
    SECURITY_TEAM,
    TRIAGE_DETAILS_SHOWN,
    TRIAGE_EVENT_TYPES,
)

from . import csv as csv_format
from .csv import COLUMNS, FORMULA_START, HEADER_LINE

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import QuerySet
    from django.db.models.sql.compiler import SQLCompiler

    from audit.models import AuditEvent

Chunk = tuple[bytes, int]


class _OfOneValue(Func):
    """SQL of one value that its template names as {value}, as often as it needs: the value is
    compiled once and its parameters repeated for each mention."""

    arity = 1
    output_field: Field[Any, Any] = TextField()

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        mentions = self.template.count("{value}")
        return self.template.replace("{value}", f"({sql})"), tuple(params) * mentions


_FORMULA_CODES = ", ".join(str(ord(character)) for character in sorted(FORMULA_START))
assert all(ord(character) < ord("A") for character in FORMULA_START)  # the shortcut below


class _TextCell(_OfOneValue):
    """A text cell: NULL when empty, an apostrophe before a formula start. Most cells start
    with a letter, past every formula start: one comparison decides them."""

    template = (
        "CASE WHEN ascii({value}) >= 65 THEN {value} WHEN {value} = '' THEN NULL "
        f"WHEN ascii({{value}}) IN ({_FORMULA_CODES}) THEN '''' || {{value}} ELSE {{value}} END"
    )


class _UtcTime(_OfOneValue):
    """A timestamptz as Python's isoformat(timespec="microseconds") of it in UTC."""

    template = """to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


# jsonb's text of a one-key object after its key: that key's value and the closing brace.
_AFTER_KEY = """split_part({value}::text, '": ', 2)"""


class _DetailsCell(_OfOneValue):
    """A jsonb as exports.csv writes `details or {}`: compact JSON with sorted keys, "{}" for
    what Python finds false, a negative number neutralised (exports_csv_details, exports
    migration 0003, says how).

    Most details are {} or an object of one key whose value is a string or a number without a
    decimal point: jsonb's text with its one '": ' closed up is then already the answer, at a
    fraction of the cost of the function (a call and a query per object). Every key is
    followed by '": ', so a text without a third part split at '": ' has one key; a string
    holding another '": ' takes the long way, as does anything nested. The function is named
    once: the planner counts its cost for every row however rarely it runs, and a higher
    estimate has it plan parallel workers and JIT compilation that cost more than they save.
    """

    # Constants only: _OfOneValue puts the compiled SQL of the one value in for {value}.
    template = (
        "coalesce(CASE WHEN {value} = '{}' THEN '{}' "  # noqa: S608
        "WHEN jsonb_typeof({value}) = 'object' "
        f"""AND split_part({{value}}::text, '": ', 3) = '' AND (left({_AFTER_KEY}, 1) = '"' """
        f"OR (left({_AFTER_KEY}, 1) NOT IN ('{{', '[') AND strpos({_AFTER_KEY}, '.') = 0)) "
        """THEN replace({value}::text, '": ', '":') END, exports_csv_details({value}))"""
    )


class _TriageDetails(_OfOneValue):
    """Of a jsonb object, only the keys a member sees of an alert's triage."""

    output_field = JSONField()
    template = (
        "(SELECT coalesce(jsonb_object_agg(shown.key, shown.value), '{}'::jsonb) "
        "FROM jsonb_each(CASE WHEN jsonb_typeof({value}) = 'object' THEN {value} END) AS shown "
        "WHERE shown.key IN (" + ", ".join(f"'{key}'" for key in TRIAGE_DETAILS_SHOWN) + "))"
    )


assert all(key.isidentifier() for key in TRIAGE_DETAILS_SHOWN)  # written into SQL above


def _seen_by(viewer_id: int | None) -> dict[str, Expression | F]:
    """Each field the CSV reads, as the viewer may see it (None: every field as stored)."""
    fields: dict[str, Expression | F] = {name: F(name) for _, name in COLUMNS}
    if viewer_id is None:
        return fields
    # audit.member_view.fields_seen_by, in SQL.
    someone_else = Q(actor_id__isnull=False) & ~Q(actor_id=viewer_id)
    triage = someone_else & Q(event_type__in=sorted(TRIAGE_EVENT_TYPES))
    for name in fields:
        if name in ACTOR_CLIENT_PATHS:
            fields[name] = Case(When(someone_else, then=Value(None)), default=F(name))
    fields["actor_label"] = Case(When(triage, then=Value(SECURITY_TEAM)), default=F("actor_label"))
    fields["details"] = Case(
        When(triage, then=_TriageDetails(F("details"))),
        default=F("details"),
        output_field=JSONField(),
    )
    return fields


def _columns(viewer_id: int | None) -> list[Any]:
    fields = _seen_by(viewer_id)
    columns: list[Any] = []
    for _, name in COLUMNS:
        value = fields[name]
        if name == "occurred_at":
            columns.append(_UtcTime(value))
        elif name == "details":
            columns.append(_DetailsCell(value))
        elif name == "ip_address":
            # inet's own text, as Django reads it; never empty, never a formula start.
            columns.append(value)
        else:
            columns.append(_TextCell(value))
    return columns


def _crlf(lines: list[Any]) -> bytes:
    """The lines, each ending in "\\n" as COPY ends them, in "\\r\\n" as Python's writer does."""
    data = b"".join(lines)
    if data.count(b"\n") == len(lines):  # no newline inside a cell: each is a line's end
        return data.replace(b"\n", b"\r\n")
    return b"".join(b"%s\r\n" % line[:-1] for line in lines)


def copy_csv_chunks(
    queryset: QuerySet[AuditEvent], *, viewer_id: int | None = None
) -> Iterator[Chunk]:
    """The CSV of the queryset's events in its order, written by PostgreSQL, as (bytes, rows)
    of up to LINES_PER_BATCH lines, the header first; constant memory.

    `viewer_id`: the person whose own Activity Log this is (what they see of others' actions).
    """
    try:
        sql, params = queryset.values_list(*_columns(viewer_id)).query.sql_with_params()
    except EmptyResultSet:  # a filter that matches nobody (queryset.none())
        yield HEADER_LINE, 0
        return
    # The header is the first line of the first batch, as in the Python writer's batches.
    lines: list[Any] = [HEADER_LINE[:-2] + b"\n"]
    header = 1
    with connections[queryset.db].cursor() as cursor:
        # The ORM cannot say COPY, and COPY takes no bind parameters. Django's cursor on
        # psycopg 3 is a ClientCursor (Django's default, client-side binding), whose mogrify()
        # merges the parameters into the SELECT as its execute() does when Django runs this
        # queryset: the statement inside is the one Django would send.
        select = cursor.mogrify(sql, params)
        with cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)") as copy:
            for line in copy:  # one row each: PostgreSQL sends a CopyData message per row
                lines.append(line)
                if len(lines) >= csv_format.LINES_PER_BATCH:
                    yield _crlf(lines), len(lines) - header
                    lines, header = [], 0
    if lines:
        yield _crlf(lines), len(lines) - header
