"""Reads for accounts: who belongs where (what a role lets them do is in accounts.access)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.inserts import planned_cursor
from audit.selectors import EventFilters, Members

from .mfa import second_factor_sql
from .models import (
    LockoutState,
    Membership,
    Organization,
    User,
    UserSession,
)


def membership_of(user: User) -> Membership | None:
    """The user's membership (with its organization), or None for anonymous and platform users."""
    if not user.is_authenticated:
        return None
    return getattr(user, "membership", None)


def sessions_open_of(user: User) -> QuerySet[UserSession]:
    """The user's own sessions that have not ended, most recently active first."""
    return UserSession.objects.filter(user=user, ended_at__isnull=True).order_by(
        "-last_activity_at", "-id"
    )


def session_open_of(user: User, session_hash: str) -> UserSession | None:
    """One of the user's own open sessions; None for a session of anyone else."""
    return sessions_open_of(user).filter(session_hash=session_hash).first()


def members_of(organization: Organization) -> QuerySet[Membership]:
    """The organization's members, with MFA and lock status."""
    confirmed_totp = TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user", "user__lockout_state", "organization")
        .annotate(has_mfa=Exists(confirmed_totp))
        .order_by("user__email")
    )


def member_of(organization: Organization, membership_id: int) -> Membership | None:
    """One member of the organization; None for a member of any other organization."""
    return members_of(organization).filter(pk=membership_id).first()


# --- The signing-in user ---------------------------------------------------------------------
#
# Every sign-in attempt reads the account with its membership, organization and lockout row.
# As a QuerySet with select_related that costs more Python time (compiling four models' worth of
# columns and joins, on every call) than the database spends on it, so the statement is built
# once per database and the rows become instances through Model.from_db, with the same value
# converters and related-object caches select_related would have set.

_SIGN_IN_MODELS: tuple[tuple[type[Model], str], ...] = (
    (User, "u"),
    (Membership, "m"),
    (Organization, "o"),
    (LockoutState, "l"),
)
_sign_in_statements: dict[str, str] = {}


def _sign_in_statement(connection: BaseDatabaseWrapper) -> str:
    sql = _sign_in_statements.get(connection.vendor)
    if sql is None:
        q = connection.ops.quote_name

        def column(model: type[Model], alias: str, name: str) -> str:
            return f"{alias}.{q(model._meta.get_field(name).column)}"

        def table(model: type[Model], alias: str) -> str:
            return f"{q(model._meta.db_table)} {alias}"

        selected = ", ".join(
            f"{alias}.{q(field.column)}"
            for model, alias in _SIGN_IN_MODELS
            for field in model._meta.concrete_fields
        )
        selected += ", " + second_factor_sql(column(User, "u", "id"))
        # Names come from the models, quoted; the address is a parameter.
        sql = _sign_in_statements[connection.vendor] = (
            f"SELECT {selected} FROM {table(User, 'u')}"  # noqa: S608
            f" LEFT JOIN {table(Membership, 'm')}"
            f" ON {column(Membership, 'm', 'user')} = {column(User, 'u', 'id')}"
            f" LEFT JOIN {table(Organization, 'o')}"
            f" ON {column(Organization, 'o', 'id')} = {column(Membership, 'm', 'organization')}"
            f" LEFT JOIN {table(LockoutState, 'l')}"
            f" ON {column(LockoutState, 'l', 'user')} = {column(User, 'u', 'id')}"
            f" WHERE LOWER({column(User, 'u', 'email')}) = %s"
        )
    return sql


def _instance(
    model: type[Model], alias: str, values: list[Any], connection: BaseDatabaseWrapper, using: str
) -> Model | None:
    fields = model._meta.concrete_fields
    if values[fields.index(model._meta.pk)] is None:  # no row on this side of a LEFT JOIN
        return None
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(alias)
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(using, [field.attname for field in fields], converted)


def user_for_sign_in(address: str, *, using: str = DEFAULT_DB_ALIAS) -> User | None:
    """The account with this address (any case), its membership, organization and lockout row,
    and (has_second_factor) whether it has a confirmed second factor.

    The same as User.objects.by_email(address).select_related("membership__organization",
    "lockout_state").first(), found through the unique index on lower(email).
    """
    connection = connections[using]
    with planned_cursor(connection) as cursor:
        cursor.execute(_sign_in_statement(connection), [address.lower()])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Model | None] = []
    start = 0
    for model, alias in _SIGN_IN_MODELS:
        end = start + len(model._meta.concrete_fields)
        instances.append(_instance(model, alias, list(row[start:end]), connection, using))
        start = end
    user, membership, organization, lockout_state = instances
    assert isinstance(user, User)  # noqa: S101 - the inner side of every join
    user.has_second_factor = bool(row[-1])  # type: ignore[attr-defined] # see mfa.user_has_any_device
    User._meta.get_field("membership").set_cached_value(user, membership)
    User._meta.get_field("lockout_state").set_cached_value(user, lockout_state)
    if membership is not None:
        Membership._meta.get_field("user").set_cached_value(membership, user)
        Membership._meta.get_field("organization").set_cached_value(membership, organization)
    if lockout_state is not None:
        LockoutState._meta.get_field("user").set_cached_value(lockout_state, user)
    return user


# --- The people an Audit Log filter names ----------------------------------------------------

# At most this many people match a name-or-email search; more would not narrow anything.
TEXT_MATCH_LIMIT = 200


def people_matching(*, organization: Organization, text: str) -> list[int]:
    """The ids of the organization's members whose name or email address contains the text."""
    return list(
        User.objects.filter(membership__organization=organization)
        .filter(Q(email__icontains=text) | Q(full_name__icontains=text))
        .values_list("pk", flat=True)[:TEXT_MATCH_LIMIT]
    )


def member_id_by_email(*, organization: Organization, email: str) -> int | None:
    """The id of the organization's member with this email address; None if there is none."""
    return (
        User.objects.filter(membership__organization=organization, email=email)
        .values_list("pk", flat=True)
        .first()
    )


def event_filters_with_members(
    filters: EventFilters, *, organization: Organization
) -> EventFilters:
    """The filters with the organization's members whom their user and text filters name: what
    audit's selectors need to read the organization's events."""
    members = Members(
        by_email=(
            member_id_by_email(organization=organization, email=filters.user)
            if filters.user
            else None
        ),
        by_text=(
            tuple(people_matching(organization=organization, text=filters.text))
            if filters.text
            else ()
        ),
    )
    return replace(filters, members=members)
