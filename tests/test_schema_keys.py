"""The Citus path in the schema: docs/scaling.md places every table, and explains every key.

Citus enforces a primary key or a unique constraint of a distributed table only when it
includes the distribution column, organization_id here. The document's table "Where every table
goes" names each table of the migrated database with its placement on a cluster (distributed by
organization_id, reference, or local to the coordinator), the keys it has today that lack
organization_id, and why. These tests read that table and the real database (pg_catalog), so
the two cannot drift apart: a new table, a new key without the organization, a key that gained
the organization or went away, and an empty reason each fail here until the document says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

from accounts.models import Organization

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"
HEADER = "| table | placement | keys without `organization_id` | why |"
PLACEMENTS = {"distributed", "reference", "local"}
NONE = "—"


@dataclass(frozen=True)
class Placement:
    table: str
    placement: str
    # Each key the document explains, as the alternatives it accepts ("PK (id, occurred_at)
    # or PK (id)" while a change to that key is on its way).
    keys: tuple[tuple[str, ...], ...]
    why: str


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def placements_from(text: str) -> list[Placement]:
    """The rows of the document's table under HEADER, in order."""
    lines = text.splitlines()
    try:
        start = lines.index(HEADER)
    except ValueError:
        raise AssertionError(f"docs/scaling.md has no table headed {HEADER!r}") from None
    rows = []
    for line in lines[start + 2 :]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        table, placement, keys, why = _cells(line)
        explained: tuple[tuple[str, ...], ...] = ()
        if keys.replace("`", "") != NONE:
            explained = tuple(
                tuple(_normalised(option) for option in key.split(" or "))
                for key in keys.split(";")
            )
        rows.append(Placement(table.strip("`"), placement, explained, why))
    return rows


def _normalised(key: str) -> str:
    return re.sub(r"\s+", " ", key.replace("`", "")).strip()


def key_name(*, primary: bool, columns: list[str], predicate: str | None) -> str:
    """A key as the document writes it: PK (a, b), UNIQUE (lower(email)), UNIQUE (x) WHERE ..."""
    text = f"{'PK' if primary else 'UNIQUE'} ({', '.join(columns)})"
    if predicate:
        text += f" WHERE {predicate}"
    # PostgreSQL prints casts the document leaves out: lower(email::text), 'running'::text.
    return _normalised(text.replace("::text", ""))


def problems(
    placements: list[Placement], tables: dict[str, list[tuple[str, list[str]]]]
) -> list[str]:
    """What the document gets wrong about the database.

    `tables` maps each table to its keys: (the key as the document writes it, its columns).
    """
    found = []
    seen: set[str] = set()
    for row in placements:
        if row.table in seen:
            found.append(f"{row.table}: placed twice")
        seen.add(row.table)
        if row.table not in tables:
            found.append(f"{row.table}: placed in the document, but the database has no such table")
            continue
        if row.placement not in PLACEMENTS:
            found.append(
                f"{row.table}: placement {row.placement!r} is none of {sorted(PLACEMENTS)}"
            )
        if not row.why.strip():
            found.append(f"{row.table}: no reason given")
        lacking = [name for name, columns in tables[row.table] if "organization_id" not in columns]
        for options in row.keys:
            matches = [name for name in lacking if name in options]
            if not matches:
                found.append(
                    f"{row.table}: explains {' or '.join(options)}, but the table has no such key "
                    f"without organization_id (its keys: {[name for name, _ in tables[row.table]]})"
                )
            lacking = [name for name in lacking if name not in matches]
        for name in lacking:
            found.append(f"{row.table}: {name} lacks organization_id and the document says nothing")
    for table in sorted(set(tables) - seen):
        found.append(f"{table}: not placed in the document")
    return found


def _database_tables() -> dict[str, list[tuple[str, list[str]]]]:
    """Every table of the schema (a partitioned table once, without its partitions), with its
    primary key and unique indexes (which include unique constraints)."""
    # pg_catalog, because Django's introspection leaves out a partitioned table's partitions
    # only by accident of its query and says nothing of partial or expression keys.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND NOT c.relispartition
            """
        )
        tables: dict[str, list[tuple[str, list[str]]]] = {name: [] for (name,) in cursor}
        cursor.execute(
            """
            SELECT c.relname, x.indisprimary,
                   ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true)
                           FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k),
                   pg_catalog.pg_get_expr(x.indpred, x.indrelid, true)
              FROM pg_catalog.pg_index x
              JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND x.indisunique
               AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            """
        )
        for table, primary, columns, predicate in cursor:
            name = key_name(primary=primary, columns=columns, predicate=predicate)
            tables[table].append((name, columns))
    return tables


@pytest.fixture(scope="module")
def document() -> list[Placement]:
    return placements_from(DOCUMENT.read_text())


@pytest.mark.postgres(reason="the keys are read from PostgreSQL's catalog")
@pytest.mark.django_db
def test_every_table_and_key_is_placed_and_explained(document):
    found = problems(document, _database_tables())
    assert not found, "docs/scaling.md, 'Where every table goes':\n" + "\n".join(found)


def test_every_model_of_an_organization_is_placed(document):
    """A new model with an organization (or one more join table) needs its row in the document,
    whatever database the suite runs on."""
    placed = {row.table for row in document}
    tenant_tables = [
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if any(
            field.is_relation and field.related_model is Organization and field.concrete
            for field in model._meta.get_fields()
        )
    ]
    assert "audit_auditevent" in tenant_tables  # the test finds what it looks for
    missing = sorted(set(tenant_tables) - placed)
    assert not missing, f"place these in docs/scaling.md, 'Where every table goes': {missing}"


def test_every_placement_has_a_placement_and_a_reason(document):
    assert document, "the document's table has no rows"
    for row in document:
        assert row.placement in PLACEMENTS, row
        assert row.why.strip(), row


# --- The checker itself: what it must refuse ------------------------------------------------

TABLES = {
    "shop_order": [("PK (id)", ["id"]), ("UNIQUE (organization_id, number)", ["organization_id"])],
}


def _row(keys: str, why: str = "A reason.") -> str:
    return f"{HEADER}\n|---|---|---|---|\n| `shop_order` | distributed | {keys} | {why} |\n"


def test_a_key_explained_and_present_passes():
    assert problems(placements_from(_row("PK (id)")), TABLES) == []


def test_an_empty_reason_fails():
    assert problems(placements_from(_row("PK (id)", why=" ")), TABLES) == [
        "shop_order: no reason given"
    ]


def test_a_key_that_no_longer_needs_its_reason_fails():
    tables = {"shop_order": [("PK (organization_id, id)", ["organization_id", "id"])]}
    (problem,) = problems(placements_from(_row("PK (id)")), tables)
    assert problem.startswith("shop_order: explains PK (id), but the table has no such key")


def test_a_key_without_the_organization_left_unexplained_fails():
    assert problems(placements_from(_row(NONE)), TABLES) == [
        "shop_order: PK (id) lacks organization_id and the document says nothing"
    ]


@pytest.mark.parametrize("key", ["PK (id, occurred_at)", "PK (id)"])
def test_either_of_two_alternatives_passes(key):
    tables = {"shop_order": [(key, key[4:-1].split(", "))]}
    row = _row("PK (id, occurred_at) or PK (id)")
    assert problems(placements_from(row), tables) == []


def test_a_table_missing_from_the_document_fails():
    tables = {**TABLES, "shop_refund": [("PK (id)", ["id"])]}
    assert problems(placements_from(_row("PK (id)")), tables) == [
        "shop_refund: not placed in the document"
    ]


def test_a_table_the_database_does_not_have_fails():
    assert problems(placements_from(_row("PK (id)")), {}) == [
        "shop_order: placed in the document, but the database has no such table"
    ]
