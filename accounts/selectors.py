"""Reads for accounts: who belongs where (what a role lets them do is in accounts.access)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Lower, TruncDate
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AuditEvent, EventType
from audit.selectors import EventFilters, Members

from .familiarity import Source
from .lockout import LockoutPolicy, counted_failures
from .models import (
    LockoutState,
    LockScope,
    Membership,
    Organization,
    OrganizationDomain,
    SavedSearch,
    User,
    UserSession,
)


def membership_of(user: User) -> Membership | None:
    """The user's membership (with its organization), or None for platform users."""
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
    passkey = WebAuthnCredential.objects.filter(user=OuterRef("user"), confirmed=True)
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user", "user__lockout_state", "organization")
        .annotate(has_passkey=Exists(passkey))
        .annotate(has_mfa=Exists(confirmed_totp) | Exists(passkey))
        .order_by("user__email")
    )


def members_with_lockout_of(
    organization: Organization, *, now: datetime | None = None
) -> QuerySet[Membership]:
    """The organization's members (members_of), each with the failures that count now towards
    its two locks: familiar_failures and unfamiliar_failures (accounts.lockout._lock_if_due
    counts the same: in the window, since the lock's reset and, for familiar ones, since the
    last sign-in). One query."""
    window_start = (now or timezone.now()) - timedelta(
        minutes=LockoutPolicy.of(organization).window_minutes
    )

    def count(source: Source, *since_fields: str) -> Coalesce:
        failures = counted_failures(source).filter(
            actor_id=OuterRef("user_id"), occurred_at__gt=window_start
        )
        for field in since_fields:
            failures = failures.filter(
                occurred_at__gt=Coalesce(OuterRef(field), Value(window_start))
            )
        counted = failures.order_by().values("actor_id").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted), 0)

    return members_of(organization).annotate(
        familiar_failures=count(
            Source.FAMILIAR, "user__lockout_state__counter_reset_at", "user__last_login"
        ),
        unfamiliar_failures=count(
            Source.UNFAMILIAR, "user__lockout_state__unfamiliar_counter_reset_at"
        ),
    )


def unfamiliar_pause_of(user: User, *, now: datetime | None = None) -> datetime | None:
    """Until when the user's unfamiliar sources are locked out, or None if they are not now."""
    state = LockoutState.objects.filter(user=user).first()
    if state is None or LockScope.UNFAMILIAR not in state.scopes_locked(now or timezone.now()):
        return None
    return state.unfamiliar_locked_until


def member_of(organization: Organization, membership_id: int) -> Membership | None:
    """One member of the organization; None for a member of any other organization."""
    return members_of(organization).filter(pk=membership_id).first()


def user_for_sign_in(address: str) -> User | None:
    """The account with this address (any case), with its membership and organization: one query.

    The rest of what a sign-in reads comes when it is needed: the lockout row under its lock
    (accounts.lockout), the second factors once the password was right (mfa.user_has_any_device).
    """
    return (
        User._default_manager.by_email(address).select_related("membership__organization").first()
    )


# --- Email domains -----------------------------------------------------------------------------


def domains_of(organization: Organization) -> QuerySet[OrganizationDomain]:
    """The organization's email domains, pending and verified, by name."""
    return OrganizationDomain.objects.filter(organization=organization).order_by("domain")


def domain_of(organization: Organization, domain_id: int) -> OrganizationDomain | None:
    """One of the organization's domains; None for a domain of any other organization."""
    return domains_of(organization).select_related("organization").filter(pk=domain_id).first()


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


def member_ids_by_email(*, organization: Organization, emails: tuple[str, ...]) -> dict[str, int]:
    """The ids of the organization's members with these email addresses, by address."""
    if not emails:
        return {}
    # The search lower-cases what it reads; addresses are unique in any case (accounts_user).
    return dict(
        User.objects.filter(membership__organization=organization)
        .annotate(address=Lower("email"))
        .filter(address__in=set(emails))
        .values_list("address", "pk")
        .order_by()
    )


def event_filters_with_members(
    filters: EventFilters, *, organization: Organization
) -> EventFilters:
    """The filters with the organization's members whom their user, text and search filters
    name: what audit's selectors need to read the organization's events."""
    members = Members(
        by_address=tuple(
            member_ids_by_email(organization=organization, emails=filters.addresses()).items()
        ),
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
        by_excluded_text=tuple(
            dict.fromkeys(
                person
                for word in filters.text_excluded
                for person in people_matching(organization=organization, text=word)
            )
        ),
    )
    return replace(filters, members=members)


# --- Settings → Security's overview ----------------------------------------------------------


@dataclass(frozen=True)
class DaySignIns:
    """One day's sign-ins and failed sign-ins of an organization."""

    day: date
    succeeded: int
    failed: int


def sign_ins_by_day_of(
    organization: Organization,
    *,
    days: int,
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> list[DaySignIns]:
    """The organization's sign-ins and failures per day in `zone`, the last `days` days up to
    today, oldest first, days without any included. One query on the (organization, event
    type, time) index."""
    today = (now or timezone.now()).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    counts = (
        AuditEvent.objects.filter(
            organization=organization,
            event_type__in=[EventType.LOGIN_SUCCEEDED, EventType.LOGIN_FAILED],
            occurred_at__gte=datetime.combine(first, time.min, tzinfo=zone),
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=zone))
        .values("day", "event_type")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_day: dict[tuple[date, str], int] = {(c["day"], c["event_type"]): c["n"] for c in counts}
    return [
        DaySignIns(
            day=day,
            succeeded=by_day.get((day, EventType.LOGIN_SUCCEEDED), 0),
            failed=by_day.get((day, EventType.LOGIN_FAILED), 0),
        )
        for day in (first + timedelta(days=n) for n in range(days))
    ]


def locked_members_of(
    organization: Organization, *, now: datetime | None = None
) -> list[tuple[Membership, datetime]]:
    """The organization's members locked out now (in either scope), with when the lock ends."""
    now = now or timezone.now()
    locked = (
        Membership.objects.filter(organization=organization)
        .filter(
            Q(user__lockout_state__locked_until__gt=now)
            | Q(user__lockout_state__unfamiliar_locked_until__gt=now)
        )
        .select_related("user", "user__lockout_state")
        .order_by("user__email")
    )
    rows = []
    for member in locked:
        state = member.user.lockout_state
        ends = [end for end in (state.locked_until, state.unfamiliar_locked_until) if end]
        rows.append((member, max(end for end in ends if end > now)))
    return rows


@dataclass(frozen=True)
class MfaAdoption:
    """How many of the organization's members have an authenticator app, of how many."""

    with_device: int
    members: int

    @property
    def percent(self) -> int:
        return round(100 * self.with_device / self.members) if self.members else 0


def mfa_adoption_of(organization: Organization) -> MfaAdoption:
    """Members with a confirmed app or passkey (as on the Members page) and all members."""
    confirmed_totp = TOTPDevice.objects.filter(user=OuterRef("user"), confirmed=True)
    passkey = WebAuthnCredential.objects.filter(user=OuterRef("user"), confirmed=True)
    counts = Membership.objects.filter(organization=organization).aggregate(
        members=Count("pk"),
        with_device=Count("pk", filter=Exists(confirmed_totp) | Exists(passkey)),
    )
    return MfaAdoption(with_device=counts["with_device"], members=counts["members"])


# --- Saved searches ----------------------------------------------------------------------------


def saved_searches_for(
    user: User, *, organization: Organization, log: str
) -> QuerySet[SavedSearch]:
    """The person's own saved searches of one log and those shared in their organization."""
    return (
        SavedSearch.objects.filter(organization=organization, log=log)
        .filter(Q(owner=user) | Q(shared=True))
        .select_related("owner")
        .order_by(Lower("name"), "id")
    )


def saved_search_own_of(
    user: User, *, organization: Organization, search_id: int
) -> SavedSearch | None:
    """One of the person's own saved searches; None for anyone else's, shared or not."""
    return (
        SavedSearch.objects.filter(organization=organization, owner=user, pk=search_id)
        .select_related("organization")
        .first()
    )
