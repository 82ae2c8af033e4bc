"""Reads of audit events. Every query is scoped here, by user or by organization.

Pages are cut by a keyset cursor on (occurred_at, id), newest first: a page deep in the past
costs what the first page costs, rows inserted meanwhile never shift a page, and nothing counts
the table. Cursors are signed for one scope (a user's log, an organization's log), so a
tampered cursor or one taken from another tenant is refused, never trusted.

Who belongs to an organization is for accounts to say: the user and text filters of an
organization's log name its members, whom accounts.selectors.event_filters_with_members looks
up before the events are read here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.core import signing
from django.db.models import Q, QuerySet

from . import lookups  # noqa: F401  (registers ip_address__in_network)
from .member_view import TRIAGE_EVENT_TYPES
from .models import EVENT_TYPES_BY_CATEGORY, AuditEvent, Category

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accounts.models import Organization, User

PAGE_SIZE = 50
# What a list row shows; the rest (user agent, details, ...) waits for the detail page.
LIST_FIELDS = (
    "id",
    "occurred_at",
    "event_type",
    "outcome",
    "reason",
    "actor",  # whose action it was decides what a person sees of it in their own log
    "actor_label",
    "target_label",
    "ip_address",
    "country",
    "city",
    "agent__browser",  # the user agents' dictionary (audit.models.UserAgent)
    "agent__os",
)
TIMELINE_SIZE = 10


class CursorError(ValueError):
    """A cursor that was not issued for this view (tampered, foreign or from another version)."""


@dataclass(frozen=True)
class Members:
    """The organization's members whom the user and text filters name (found by accounts)."""

    # The member whose email address the user filter holds; None when no member has it.
    by_email: int | None = None
    # The members whose name or email address contains the text filter.
    by_text: tuple[int, ...] = ()
    # The members whose name or email address contains any of the negated free-text words.
    by_excluded_text: tuple[int, ...] = ()
    # The members whom the search's actor: and target: values name by email address.
    by_address: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Condition:
    """One qualifier of a search (audit.query): the field matches any of the values, or, negated,
    none of them."""

    field: str  # actor, target, type, outcome, reason, ip or country
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class EventFilters:
    since: datetime | None = None
    until: datetime | None = None
    category: str = ""
    event_type: str = ""
    outcome: str = ""
    # A user id, or else an email address (of a member, or kept as an event's label).
    user_id: int | None = None
    user: str = ""
    # An address or a CIDR network, already normalised by the form.
    ip: str = ""
    country: str = ""
    # Part of a user's name or email address.
    text: str = ""
    # Words none of which may be part of the name or address of a person the event is about
    # (the search's negated free text).
    text_excluded: tuple[str, ...] = ()
    # The search's qualifiers (audit.query), all of which apply.
    conditions: tuple[Condition, ...] = ()
    # Whom `user`, `text` and the conditions name among the organization's members; None
    # until looked up.
    members: Members | None = None

    def addresses(self) -> tuple[str, ...]:
        """The email addresses the actor: and target: conditions name."""
        return tuple(
            value
            for condition in self.conditions
            if condition.field in ("actor", "target")
            for value in condition.values
            if not value.isdigit()
        )

    @property
    def names_user(self) -> bool:
        return self.user_id is not None or bool(self.user)


@dataclass
class Page:
    events: list[AuditEvent]
    next_cursor: str | None


def _with_agent(queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """Events with their user agent (a small dictionary table), joined rather than per row."""
    return queryset.select_related("agent")


def events_for_user(*, user: User) -> QuerySet[AuditEvent]:
    """The user's own events (as actor or as the person acted on), newest first."""
    return _with_agent(AuditEvent.objects.filter(Q(actor=user) | Q(target_user=user))).order_by(
        "-occurred_at", "-id"
    )


def events_for_organization(*, organization: Organization) -> QuerySet[AuditEvent]:
    """Every event of one organization, newest first."""
    return _with_agent(AuditEvent.objects.filter(organization=organization)).order_by(
        "-occurred_at", "-id"
    )


def event_for_organization(*, organization: Organization, event_id: int) -> AuditEvent | None:
    return events_for_organization(organization=organization).filter(pk=event_id).first()


def event_for_user(*, user: User, event_id: int) -> AuditEvent | None:
    return events_for_user(user=user).filter(pk=event_id).first()


def _members(filters: EventFilters) -> Members:
    """Whom the filters name among the organization's members; refuses filters not looked up."""
    if filters.members is None:
        raise ValueError(
            "The user and text filters of an organization's log name its members: read its "
            "events with accounts.selectors.event_filters_with_members(filters, ...)."
        )
    return filters.members


def _user_condition(*, filters: EventFilters, organization_wide: bool) -> Q:
    if filters.user_id is not None:
        return Q(actor_id=filters.user_id) | Q(target_user_id=filters.user_id)
    if organization_wide:
        found = _members(filters).by_email
        if found is not None:
            return Q(actor_id=found) | Q(target_user_id=found)
    # Not a member (any more): rows that only kept the address as a label, such as sign-ins
    # with an unknown username or events of a removed user.
    return Q(actor_label=filters.user) | Q(target_label=filters.user)


def _seen(condition: Q, *, field: str, viewer_id: int | None) -> Q:
    """The condition on what the viewer sees of an event (audit.member_view): in a person's own
    log, another person's client and a triager's name are hidden, so matching them would
    tell what the page hides."""
    if viewer_id is None:
        return condition
    if field in ("ip", "country"):
        return condition & Q(actor_id=viewer_id)
    if field == "actor":
        return condition & (Q(actor_id=viewer_id) | ~Q(event_type__in=TRIAGE_EVENT_TYPES))
    return condition


def _person_q(field: str, value: str, members: Members | None) -> Q:
    column = "actor" if field == "actor" else "target_user"
    label = "actor_label" if field == "actor" else "target_label"
    if value.isdigit():
        return Q(**{f"{column}_id": int(value)})
    found = dict(members.by_address).get(value) if members is not None else None
    if found is not None:
        return Q(**{f"{column}_id": found})
    # Not a member (any more), or a person's own log: the address the row kept as its label.
    return Q(**{label: value})


def _condition_q(condition: Condition, *, members: Members | None) -> Q:
    field, values = condition.field, condition.values
    if field in ("actor", "target"):
        found = Q()
        for value in values:
            found |= _person_q(field, value, members)
        return found
    if field == "ip":
        found = Q()
        for value in values:
            found |= Q(ip_address__in_network=value) if "/" in value else Q(ip_address=value)
        return found
    column = {"type": "event_type", "outcome": "outcome", "reason": "reason"}.get(field, field)
    if len(values) == 1:
        return Q(**{column: values[0]})
    return Q(**{f"{column}__in": values})


def _conditions_filter(
    queryset: QuerySet[AuditEvent], *, filters: EventFilters, viewer_id: int | None
) -> QuerySet[AuditEvent]:
    for condition in filters.conditions:
        found = _seen(
            _condition_q(condition, members=filters.members),
            field=condition.field,
            viewer_id=viewer_id,
        )
        queryset = queryset.exclude(found) if condition.negated else queryset.filter(found)
    return queryset


def events_filter(
    queryset: QuerySet[AuditEvent],
    *,
    filters: EventFilters,
    organization_wide: bool = False,
    viewer_id: int | None = None,
) -> QuerySet[AuditEvent]:
    """Narrow an already scoped queryset by the filters (the text filter and the members the
    user filter names apply to an organization's events only). With viewer_id (a person's own
    log), conditions on what the person does not see of an event never match it."""
    f = filters
    if f.since:
        queryset = queryset.filter(occurred_at__gte=f.since)
    if f.until:
        queryset = queryset.filter(occurred_at__lt=f.until)
    if f.event_type:
        queryset = queryset.filter(event_type=f.event_type)
    elif f.category:
        queryset = queryset.filter(event_type__in=EVENT_TYPES_BY_CATEGORY[Category(f.category)])
    if f.outcome:
        queryset = queryset.filter(outcome=f.outcome)
    if f.ip:
        address = Q(ip_address__in_network=f.ip) if "/" in f.ip else Q(ip_address=f.ip)
        queryset = queryset.filter(_seen(address, field="ip", viewer_id=viewer_id))
    if f.country:
        queryset = queryset.filter(
            _seen(Q(country=f.country), field="country", viewer_id=viewer_id)
        )
    queryset = _conditions_filter(queryset, filters=f, viewer_id=viewer_id)
    if f.names_user:
        queryset = queryset.filter(_user_condition(filters=f, organization_wide=organization_wide))
    if f.text and organization_wide:
        # People of the organization, by name or email; the id indexes then find their events.
        people = _members(f).by_text
        if not people:
            return queryset.none()
        queryset = queryset.filter(Q(actor_id__in=people) | Q(target_user_id__in=people))
    elif f.text and viewer_id is not None:
        # A person's own log holds a handful of people: the names its rows kept.
        actor = _seen(Q(actor_label__icontains=f.text), field="actor", viewer_id=viewer_id)
        queryset = queryset.filter(actor | Q(target_label__icontains=f.text))
    if f.text_excluded and (organization_wide or viewer_id is not None):
        queryset = queryset.exclude(
            _excluded_text_q(f, organization_wide=organization_wide, viewer_id=viewer_id)
        )
    return queryset


def _excluded_text_q(f: EventFilters, *, organization_wide: bool, viewer_id: int | None) -> Q:
    """The events whose searchable text holds a negated word: the names and addresses the row
    kept, and (in an organization's log) the members whose name or address holds it now, as the
    positive text finds them."""
    found = Q()
    for word in f.text_excluded:
        actor = _seen(Q(actor_label__icontains=word), field="actor", viewer_id=viewer_id)
        found |= actor | Q(target_label__icontains=word)
    if organization_wide:
        people = _members(f).by_excluded_text
        if people:
            found |= Q(actor_id__in=people) | Q(target_user_id__in=people)
    return found


def events_matching(
    *, filters: EventFilters, organization: Organization | None = None, user: User | None = None
) -> QuerySet[AuditEvent]:
    """The events of one scope (a person's own, or an organization's) that match the filters:
    what a CSV export, a background export or the API reads. The person's own log has no user
    filter, and its text matches the names its rows kept."""
    if user is not None:
        return events_filter(events_for_user(user=user), filters=filters, viewer_id=user.pk)
    assert organization is not None
    return events_filter(
        events_for_organization(organization=organization),
        filters=filters,
        organization_wide=True,
    )


def _person_ids(filters: EventFilters) -> list[int] | None:
    """The people the user or text filter narrows to, when it names members (else None)."""
    if filters.user_id is not None:
        return [filters.user_id]
    if filters.user:
        found = _members(filters).by_email
        return [found] if found is not None else None
    if filters.text:
        return list(_members(filters).by_text)
    return None


def _split_by_person(queryset: QuerySet[AuditEvent], ids: list[int]) -> list[QuerySet[AuditEvent]]:
    """`actor in ids OR target in ids` as two disjoint parts, each served by its own index in
    time order (one OR would read and sort every matching row to find the newest fifty)."""
    if len(ids) == 1:
        return [
            queryset.filter(actor_id=ids[0]),
            queryset.filter(target_user_id=ids[0]).exclude(actor_id=ids[0]),
        ]
    return [
        queryset.filter(actor_id__in=ids),
        queryset.filter(target_user_id__in=ids).exclude(actor_id__in=ids),
    ]


def event_list_parts(
    *,
    filters: EventFilters,
    organization: Organization | None = None,
    user: User | None = None,
) -> list[QuerySet[AuditEvent]]:
    """The rows of a list page, scoped to the user's own events or the organization's, as
    disjoint parts that events_page merges (same rows as events_filter, read faster)."""
    if user is not None:
        own = _with_agent(AuditEvent.objects.all())
        parts = _split_by_person(own, [user.pk])
        return [events_filter(part, filters=filters, viewer_id=user.pk) for part in parts]
    assert organization is not None
    base = events_for_organization(organization=organization)
    ids = _person_ids(filters)
    if ids is None or (filters.names_user and filters.text):
        return [events_filter(base, filters=filters, organization_wide=True)]
    rest = replace(filters, user_id=None, user="", text="")
    return _split_by_person(events_filter(base, filters=rest, organization_wide=True), ids)


def cursor_encode(event: AuditEvent, *, scope: str) -> str:
    at = event.occurred_at.astimezone(UTC)
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    return signing.dumps([micros, event.pk], salt=f"audit.cursor:{scope}")


def cursor_decode(token: str, *, scope: str) -> tuple[datetime, int]:
    try:
        micros, event_id = signing.loads(token, salt=f"audit.cursor:{scope}")
        seconds, micro = divmod(int(micros), 1_000_000)
        at = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micro)
        return at, int(event_id)
    except (signing.BadSignature, ValueError, TypeError, OverflowError) as exc:
        raise CursorError(
            "This page link is not valid here. Start again from the first page."
        ) from exc


def events_page(
    queryset: QuerySet[AuditEvent] | list[QuerySet[AuditEvent]],
    *,
    cursor: str,
    scope: str,
    size: int = PAGE_SIZE,
) -> Page:
    """One page, newest first, after the cursor (if any); raises CursorError for a bad cursor.

    Given disjoint parts, reads a page from each and merges them.
    """
    parts = queryset if isinstance(queryset, list) else [queryset]
    if cursor:
        at, event_id = cursor_decode(cursor, scope=scope)
        # The first condition is the index range; the second only trims ties at `at`.
        parts = [
            part.filter(occurred_at__lte=at).filter(Q(occurred_at__lt=at) | Q(id__lt=event_id))
            for part in parts
        ]
    rows: list[AuditEvent] = []
    for part in parts:
        rows += part.order_by("-occurred_at", "-id")[: size + 1]
    if len(parts) > 1:
        rows.sort(key=lambda event: (event.occurred_at, event.pk), reverse=True)
        rows = rows[: size + 1]
    next_cursor = cursor_encode(rows[size - 1], scope=scope) if len(rows) > size else None
    return Page(events=rows[:size], next_cursor=next_cursor)


def _around(parts: list[QuerySet[AuditEvent]], event: AuditEvent) -> Sequence[AuditEvent]:
    at, pk = event.occurred_at, event.pk
    before: list[AuditEvent] = []
    after: list[AuditEvent] = []
    for part in parts:
        before += (
            part.filter(occurred_at__lte=at)
            .filter(Q(occurred_at__lt=at) | Q(id__lt=pk))
            .order_by("-occurred_at", "-id")[:TIMELINE_SIZE]
        )
        after += (
            part.filter(occurred_at__gte=at)
            .filter(Q(occurred_at__gt=at) | Q(id__gt=pk))
            .order_by("occurred_at", "id")[:TIMELINE_SIZE]
        )
    before = sorted(before, key=lambda e: (e.occurred_at, e.pk), reverse=True)[:TIMELINE_SIZE]
    after = sorted(after, key=lambda e: (e.occurred_at, e.pk))[:TIMELINE_SIZE]
    return [*reversed(after), event, *before]


def event_timeline(
    *, organization: Organization, event: AuditEvent
) -> dict[str, Sequence[AuditEvent]]:
    """The same person's and the same address's events around one event, newest first."""
    scoped = events_for_organization(organization=organization)
    timeline: dict[str, Sequence[AuditEvent]] = {"user": [], "ip": []}
    person = event.actor_id or event.target_user_id
    if person is not None:
        timeline["user"] = _around(_split_by_person(scoped, [person]), event)
    elif event.actor_label:
        timeline["user"] = _around([scoped.filter(actor_label=event.actor_label)], event)
    if event.ip_address:
        timeline["ip"] = _around([scoped.filter(ip_address=event.ip_address)], event)
    return timeline


def events_retention_days_allowed(*, organization_id: int | None) -> int | None:
    """The days the database keeps a scope's events (None: events without an organization).

    On PostgreSQL the purge functions refuse to delete younger events (audit migration 0009:
    the longest retention the organization has had within the downgrade grace period, the
    platform retention the owner wrote at migrate, never under the floor); None elsewhere, and
    for an organization the database does not know.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        # A database function: the history and policy it reads are not the app role's to read.
        cursor.execute("SELECT audit_retention_days(%s::bigint)", [organization_id])
        days: int | None
        (days,) = cursor.fetchone()
    return days
