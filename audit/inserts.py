"""INSERT for the few writes on every sign-in, without the ORM's per-call query compilation.

Model.save() and bulk_create() compile an InsertQuery on every call; for a 27-column row that
compilation costs more than the database's work. Here the statement is built once per model, row
count and database, and each call only prepares its values the way bulk_create does (field
pre_save, then get_db_prep_save), so what reaches the table is the same. Columns with a database
default (AuditEvent.txid) are left to the database; the primary key comes back with RETURNING.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models.fields import NOT_PROVIDED


@contextmanager
def planned_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL may plan once per connection and then reuse.

    Django's psycopg cursors bind parameters on the client, so the server parses and plans every
    statement anew; for the sign-in's few fixed statements that planning costs more than running
    them. This cursor sends parameters separately, and psycopg prepares a statement once it has
    run prepare_threshold times (5 by default; OPTIONS {"prepare_threshold": None} turns it off,
    as a transaction-mode PgBouncer older than 1.21 needs). Elsewhere, Django's own cursor. It is
    wrapped as connection.cursor() is, so query logging and execute_wrapper() still see it.
    """
    server_binding = None
    if connection.vendor == "postgresql":
        from django.db.backends.postgresql import base

        server_binding = getattr(base, "ServerBindingCursor", None)  # psycopg 3 only
    if server_binding is None:
        with connection.cursor() as cursor:
            yield cursor
        return

    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = server_binding(connection.connection)
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
    columns = _columns(model)
    batch = max(1, connection.ops.bulk_batch_size(list(columns), objs))
    if len(objs) > batch:  # more than one statement: all or none, as bulk_create
        with transaction.atomic(using=using, savepoint=False):
            for start in range(0, len(objs), batch):
                rows_insert(objs[start : start + batch], using=using)
        return
    params: list[object] = []
    for obj in objs:
        params.extend(
            field.get_db_prep_save(field.pre_save(obj, True), connection) for field in columns
        )
    with planned_cursor(connection) as cursor:
        cursor.execute(_statement(model, len(objs), connection), params)
        keys = cursor.fetchall()
    pk_field = model._meta.pk
    for obj, (key,) in zip(objs, keys, strict=True):
        setattr(obj, pk_field.attname, pk_field.to_python(key))  # type: ignore[union-attr]
        obj._state.adding = False
        obj._state.db = using
