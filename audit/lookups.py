"""`ip_address__in_network`: the event's address lies inside a CIDR network.

PostgreSQL compares with its inet operator `<<=` (which a btree index on the column can serve);
SQLite stores addresses as text, so there a small Python function registered on the connection
does the same test exactly.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING

from django.db.models import GenericIPAddressField, Lookup

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

SQLITE_FUNCTION = "audit_ip_in_network"


@lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _ip_in_network(address: str | None, cidr: str) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address) in _network(cidr)
    except ValueError:
        return False


@GenericIPAddressField.register_lookup
class InNetwork(Lookup[str]):
    lookup_name = "in_network"

    def get_db_prep_lookup(
        self, value: object, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[str | int]]:
        # A network, not an address: skip the field's address validation.
        return ("%s", [str(_network(str(value)))])

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[str | int]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <<= {rhs}::cidr", [*lhs_params, *rhs_params]

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[str | int]]:
        connection.ensure_connection()
        connection.connection.create_function(SQLITE_FUNCTION, 2, _ip_in_network)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{SQLITE_FUNCTION}({lhs}, {rhs})", [*lhs_params, *rhs_params]
