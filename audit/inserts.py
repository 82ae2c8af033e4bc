"""INSERT for the few writes on every sign-in, without the ORM's per-call query compilation.

Model.save() and bulk_create() compile an InsertQuery on every call; for a 27-column row that
compilation costs more than the database's work. Here the statement is built once per model, row
count and database, and each call only prepares its values the way bulk_create does (field
pre_save, then get_db_prep_save), so what reaches the table is the same. Columns with a database
default (AuditEvent.txid) are left to the database; the primary key comes back with RETURNING.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models.fields import NOT_PROVIDED


@lru_cache(maxsize=512)
def _numbered(query: str) -> str:
    """The statement with PostgreSQL's own placeholders: each %s as $1, $2, ...; %% as %."""
    pieces = []
    count = 0
    for piece in re.split(r"(%%|%s)", query):
        if piece == "%s":
            count += 1
            pieces.append(f"${count}")
        else:
            pieces.append("%" if piece == "%%" else piece)
    return "".join(pieces)


@cache
def _planned_cursor_class() -> type | None:
    """psycopg 3's RawCursor (server-side binding, $n placeholders) fed Django-style %s SQL.

    Django's ServerBindingCursor would do, but psycopg converts %s placeholders anew on every
    call for a statement of more than 50 parameters (a sign-in's last_login stamp, session row
    and two events have 62), a regular-expression pass that costs more than a round trip; here
    each statement is converted once per process (_numbered).
    """
    try:
        import psycopg
        from django.db.backends.postgresql import base
    except ImportError:
        return None
    mixin = getattr(base, "CursorMixin", None)
    if mixin is None or not hasattr(psycopg, "RawCursor"):  # psycopg 2, or psycopg 3 < 3.2
        return None

    class PlannedCursor(mixin, psycopg.RawCursor):  # type: ignore[misc, valid-type]
        def execute(self, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(query, str):
                query = _numbered(query)
            return super().execute(query, params, **kwargs)

    return PlannedCursor


@contextmanager
def planned_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL may plan once per connection and then reuse.

    Django's psycopg cursors bind parameters on the client, so the server parses and plans every
    statement anew; for the sign-in's few fixed statements that planning costs more than running
    them. This cursor sends parameters separately, and psycopg prepares a statement once it has
    run prepare_threshold times (5 by default; OPTIONS {"prepare_threshold": None} turns it off,
    as a transaction-mode PgBouncer older than 1.21 needs). Statements use Django's %s
    placeholders. Elsewhere, Django's own cursor. It is wrapped as connection.cursor() is, so
    query logging and execute_wrapper() still see it.
    """
    cursor_class = _planned_cursor_class() if connection.vendor == "postgresql" else None
    if cursor_class is None:
        with connection.cursor() as cursor:
            yield cursor
        return

    # As connection.cursor() does: with CONN_HEALTH_CHECKS a kept connection that died (the
    # database restarted or was out of reach) is replaced here, not used and failed on.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = cursor_class(connection.connection)
    connection.validate_thread_sharing()
    wrapped = (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )
    with wrapped as cursor:
        yield cursor


@cache
def _columns(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and field.db_default is NOT_PROVIDED and not field.generated
    )


_statements: dict[tuple[type[models.Model], int, str], str] = {}


def _statement(model: type[models.Model], rows: int, connection: BaseDatabaseWrapper) -> str:
    key = (model, rows, connection.vendor)
    sql = _statements.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(_columns(model))) + ")"
        # Table and column names come from the model, quoted; every value is a parameter.
        sql = _statements[key] = (
            f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(field.column) for field in _columns(model))}) "
            f"VALUES {', '.join([row] * rows)} "
            f"RETURNING {quote(model._meta.pk.column)}"  # type: ignore[union-attr]
        )
    return sql


def _values(objs: Sequence[models.Model], connection: BaseDatabaseWrapper) -> list[object]:
    columns = _columns(type(objs[0]))
    params: list[object] = []
    for obj in objs:
        params.extend(
            field.get_db_prep_save(field.pre_save(obj, True), connection) for field in columns
        )
    return params


def _saved(objs: Sequence[models.Model], keys: Sequence[object], using: str) -> None:
    pk_field = objs[0]._meta.pk
    for obj, key in zip(objs, keys, strict=True):
        setattr(obj, pk_field.attname, pk_field.to_python(key))  # type: ignore[union-attr]
        obj._state.adding = False
        obj._state.db = using


def _batch_size(objs: Sequence[models.Model], connection: BaseDatabaseWrapper) -> int:
    """How many of these rows one INSERT may carry on this database."""
    return max(1, connection.ops.bulk_batch_size(list(_columns(type(objs[0]))), objs))


_together: dict[tuple[tuple[str, ...], tuple[tuple[type[models.Model], int], ...], str], str] = {}


def _statement_together(
    statements: tuple[str, ...],
    shapes: tuple[tuple[type[models.Model], int], ...],
    connection: BaseDatabaseWrapper,
) -> str:
    key = (statements, shapes, connection.vendor)
    sql = _together.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        parts = [f"s{n} AS ({statement})" for n, statement in enumerate(statements)]
        parts += [
            f"g{n} AS ({_statement(model, rows, connection)})"
            for n, (model, rows) in enumerate(shapes)
        ]
        # Names from the models, quoted; every value is a parameter of the parts.
        keys = " UNION ALL ".join(
            f"SELECT {n}, {quote(model._meta.pk.column)} FROM g{n}"  # type: ignore[union-attr]  # noqa: S608
            for n, (model, _rows) in enumerate(shapes)
        )
        sql = _together[key] = f"WITH {', '.join(parts)} {keys}"
    return sql


def rows_insert(objs: Sequence[models.Model], *, using: str) -> None:
    """Insert new instances of one model and give each its primary key.

    One statement, which commits on its own on a connection in autocommit; more rows than one
    statement may carry go in several statements inside one transaction.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[using]
    if not connection.features.can_return_rows_from_bulk_insert:
        model._default_manager.using(using).bulk_create(objs)
        return
    batch = _batch_size(objs, connection)
    if len(objs) > batch:  # more than one statement: all or none, as bulk_create
        with transaction.atomic(using=using, savepoint=False):
            for start in range(0, len(objs), batch):
                rows_insert(objs[start : start + batch], using=using)
        return
    with planned_cursor(connection) as cursor:
        cursor.execute(_statement(model, len(objs), connection), _values(objs, connection))
        keys = cursor.fetchall()
    _saved(objs, [key for (key,) in keys], using)


def rows_insert_together(
    groups: Sequence[Sequence[models.Model]],
    *,
    using: str,
    statements: Sequence[tuple[str, Sequence[object]]] = (),
) -> None:
    """Insert new rows of several models (one model per group), and run other writes of the same
    change (`statements`: an UPDATE with its parameters), in one statement: all or none.

    On PostgreSQL one statement of data-modifying WITH queries: each group's INSERT returns its
    keys, the final SELECT hands them back group by group, and the database is asked once
    instead of once per write (a round trip costs more than the rows of a sign-in). Elsewhere,
    or when a group needs more than one statement, one write after another in one transaction.
    """
    groups = [group for group in groups if group]
    if len(groups) <= 1 and not statements:
        # One model: its own statement, which in autocommit commits on its own.
        for group in groups:
            rows_insert(group, using=using)
        return
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or not groups
        or any(len(group) > _batch_size(group, connection) for group in groups)
    ):
        with transaction.atomic(using=using, savepoint=False):
            with planned_cursor(connection) as cursor:
                for sql, params in statements:
                    cursor.execute(sql, params)
            for group in groups:
                rows_insert(group, using=using)
        return
    sql = _statement_together(
        tuple(statement for statement, _params in statements),
        tuple((type(group[0]), len(group)) for group in groups),
        connection,
    )
    values: list[object] = []
    for _statement_sql, params in statements:
        values.extend(params)
    for group in groups:
        values.extend(_values(group, connection))
    with planned_cursor(connection) as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    # Each part's keys come back in the order of its VALUES rows, as bulk_create relies on.
    for n, group in enumerate(groups):
        _saved(group, [key for index, key in rows if index == n], using)
