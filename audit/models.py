"""The append-only table of security events and the names they are stored under."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, models, router, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler


class EventType(models.TextChoices):
    """Stable dotted names. Never rename a stored value; add new ones."""

    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    # Attempts refused by the throttle before any password check (accounts.throttling): one
    # event per client IP or account, organization and window, with the window's count.
    LOGIN_THROTTLED = "login.throttled"
    LOGOUT = "logout"
    MFA_DEVICE_ADDED = "mfa.device_added"
    MFA_DEVICE_REMOVED = "mfa.device_removed"
    MFA_BACKUP_CODES_GENERATED = "mfa.backup_codes_generated"
    MFA_VERIFIED = "mfa.verified"
    MFA_VERIFICATION_FAILED = "mfa.verification_failed"
    MFA_RESET_BY_ADMIN = "mfa.reset_by_admin"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    PASSWORD_RESET_COMPLETED = "password.reset_completed"
    PASSWORD_RESET_FAILED = "password.reset_failed"
    PASSWORD_CHANGED = "password.changed"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_EXPIRED = "session.expired"
    # A signed-in session used from a network other than the one it started in (and than the
    # last one recorded): accounts.sessions.session_location_track.
    SESSION_LOCATION_CHANGED = "session.location_changed"
    LOCKOUT_TRIGGERED = "lockout.triggered"
    LOCKOUT_RELEASED = "lockout.released"
    ALERT_RAISED = "alert.raised"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_RESOLVED = "alert.resolved"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    SETTINGS_CHANGED = "settings.changed"
    AUDIT_LOG_VIEWED = "audit_log.viewed"
    EXPORT_CREATED = "export.created"
    EXPORT_DOWNLOADED = "export.downloaded"
    RETENTION_PURGED = "retention.purged"
    # The outcome of re-deriving the sealed blocks of an organization's events (integrity app).
    INTEGRITY_VERIFIED = "integrity.verified"
    INTEGRITY_FAILED = "integrity.failed"
    # A named search of the Audit Log or the Activity Log (accounts.models.SavedSearch).
    SEARCH_SAVED = "search.saved"
    SEARCH_DELETED = "search.deleted"
    # A member's answer, on their Profile, about one of their own events ("Was this you?"); the
    # details name the event. Reported ("No, secure my account") also says what was done.
    ACTIVITY_CONFIRMED = "activity.confirmed"
    ACTIVITY_REPORTED = "activity.reported"
    # A periodic review of the log (compliance app) signed off by its reviewer, with the period
    # and the marks; and one that passed its due time unsigned (recorded once per review).
    REVIEW_COMPLETED = "review.completed"
    REVIEW_OVERDUE = "review.overdue"
    # An administrator (or an access review's decision) took a member out of the organization.
    MEMBER_REMOVED = "member.removed"
    # Access reviews (reports app): a campaign started, one member decided, the campaign closed.
    ACCESS_REVIEW_STARTED = "access_review.started"
    ACCESS_REVIEW_DECIDED = "access_review.decided"
    ACCESS_REVIEW_COMPLETED = "access_review.completed"
    # A compliance report (reports app) requested, and its bundle downloaded.
    REPORT_CREATED = "report.created"
    REPORT_DOWNLOADED = "report.downloaded"


class Category(models.TextChoices):
    AUTHENTICATION = "authentication"
    MFA = "mfa"
    PASSWORD = "password"
    SESSION = "session"
    LOCKOUT = "lockout"
    ALERTS = "alerts"
    ADMINISTRATION = "administration"


_PREFIX_CATEGORY = {
    "login": Category.AUTHENTICATION,
    "logout": Category.AUTHENTICATION,
    "mfa": Category.MFA,
    "password": Category.PASSWORD,
    "session": Category.SESSION,
    "lockout": Category.LOCKOUT,
    "alert": Category.ALERTS,
}


def category_of(event_type: str) -> Category:
    return _PREFIX_CATEGORY.get(event_type.split(".", 1)[0], Category.ADMINISTRATION)


EVENT_TYPES_BY_CATEGORY: dict[Category, list[str]] = {c: [] for c in Category}
for _value in EventType.values:
    EVENT_TYPES_BY_CATEGORY[category_of(_value)].append(_value)


class Outcome(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


class Reason:
    """Reason codes stored in AuditEvent.reason (stable values, like event types)."""

    INVALID_CREDENTIALS = "invalid_credentials"
    UNKNOWN_USER = "unknown_user"
    INACTIVE_ACCOUNT = "inactive_account"
    ACCOUNT_LOCKED = "account_locked"
    MFA_FAILED = "mfa_failed"
    INVALID_TOKEN = "invalid_token"
    PASSWORD_REJECTED = "password_rejected"
    LOGOUT = "logout"
    REVOKED_BY_USER = "revoked_by_user"
    REVOKED_BY_ADMIN = "revoked_by_admin"
    PASSWORD_CHANGED = "password_changed"
    EXPIRED = "expired"
    ADMIN_UNLOCK = "admin_unlock"
    PASSWORD_RESET = "password_reset"
    # login.throttled: which limit refused the attempt.
    IP_RATE_LIMIT = "ip_rate_limit"
    ACCOUNT_RATE_LIMIT = "account_rate_limit"
    ORGANIZATION_RATE_LIMIT = "organization_rate_limit"
    # mfa.verification_failed for a passkey: why its answer was refused.
    PASSKEY_REPLAYED = "passkey_replayed"  # no ceremony pending, another challenge, or old count
    PASSKEY_WRONG_ORIGIN = "passkey_wrong_origin"  # signed for another site (origin or RP ID)
    PASSKEY_OTHER_USER = "passkey_other_user"  # another account's passkey at this sign-in
    PASSKEY_UNKNOWN = "passkey_unknown"  # no such passkey here (removed, or never added)
    PASSKEY_INVALID = "passkey_invalid"  # malformed, unverified user or a bad signature
    PASSKEY_REQUIRED = "passkey_required"  # a code where the organization requires a passkey
    # login.failed: an access policy (network, hours, session limit) refused a right password.
    POLICY_DENIED = "policy_denied"
    # session.ended: an access policy no longer admits the session.
    POLICY = "policy"


class CurrentTransactionId(models.Func):
    """The inserting transaction's id (PostgreSQL xid8 as bigint); 0 on SQLite.

    See api.feed for why the Enterprise API orders its feed by it.
    """

    template = "(pg_current_xact_id()::text::bigint)"
    output_field = models.BigIntegerField()
    arity = 0

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[str | int]]:
        # SQLite has one writer at a time: ids are committed in the order they are handed out.
        return "0", []


class UserAgent(models.Model):
    """A client's user agent string as events recorded it, with what it was parsed into.

    Events name it by a four-byte id (AuditEvent.agent) instead of repeating the string, about a
    third of an event's bytes: a tenant sees a few hundred distinct agents among millions of
    events. A row is the whole of what an event recorded, the string and its parse together, so
    a newer parser makes new rows and never changes what older events show. Rows are never
    changed or deleted (events name them without a database constraint and must outlive
    nothing); AuditEvent's manager and audit.services add them as events need them.
    """

    # Four bytes in every event that names one: a few hundred rows per tenant, never billions.
    id = models.AutoField(primary_key=True)
    user_agent = models.CharField(max_length=512, blank=True)
    browser = models.CharField(max_length=64, blank=True)
    os = models.CharField(max_length=64, blank=True)
    device_type = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_agent", "browser", "os", "device_type"], name="audit_useragent_key"
            )
        ]

    def __str__(self) -> str:
        return self.user_agent

    @property
    def key(self) -> AgentKey:
        return (self.user_agent, self.browser, self.os, self.device_type)


# (user_agent, browser, os, device_type), as UserAgent stores them.
AgentKey = tuple[str, str, str, str]
NO_AGENT: AgentKey = ("", "", "", "")
AGENT_FIELDS = ("user_agent", "browser", "os", "device_type")
# Ids of dictionary rows this process has seen committed, by database name and key; rows are
# never deleted, so an id stays right once seen (tests that empty the database forget them).
_AGENT_IDS: OrderedDict[tuple[str, AgentKey], int] = OrderedDict()
AGENT_IDS_CACHED = 1024


def agent_ids_forget() -> None:
    """Forget every cached dictionary id (for a database emptied under this process)."""
    _AGENT_IDS.clear()


def _rows_of(keys: Iterable[AgentKey], *, using: str) -> dict[AgentKey, int]:
    match = models.Q()
    for key in keys:
        match |= models.Q(**dict(zip(AGENT_FIELDS, key, strict=True)))
    return {row.key: row.id for row in UserAgent.objects.using(using).filter(match)}


def _cache(found: dict[AgentKey, int], database: str) -> None:
    for key, pk in found.items():
        _AGENT_IDS[database, key] = pk
    while len(_AGENT_IDS) > AGENT_IDS_CACHED:
        _AGENT_IDS.popitem(last=False)


def agent_ids(keys: Iterable[AgentKey], *, using: str) -> dict[AgentKey, int]:
    """The dictionary row of each key, added where missing; none for NO_AGENT (no row).

    Rows are read first (the usual case: the agent is known); a missing one is added with ON
    CONFLICT DO NOTHING (bulk_create's ignore_conflicts), so writers adding the same agent at
    once both succeed, and read back. Rows join the caller's transaction, and their ids are
    cached in this process only once it commits (transaction.on_commit): a row added in a
    transaction that rolls back is never named later.
    """
    database = connections[using].settings_dict["NAME"]
    found: dict[AgentKey, int] = {}
    missing: set[AgentKey] = set()
    for key in set(keys) - {NO_AGENT}:
        cached = _AGENT_IDS.get((database, key))
        if cached is None:
            missing.add(key)
        else:
            _AGENT_IDS.move_to_end((database, key))
            found[key] = cached
    if not missing:
        return found
    read = _rows_of(missing, using=using)
    if len(read) < len(missing):
        UserAgent.objects.using(using).bulk_create(
            [
                UserAgent(**dict(zip(AGENT_FIELDS, key, strict=True)))
                for key in sorted(missing - read.keys())  # one order: no deadlock between two
            ],
            ignore_conflicts=True,
        )
        read = _rows_of(missing, using=using)
    transaction.on_commit(lambda: _cache(read, database), using=using)
    return {**found, **read}


def agents_resolve(events: Iterable[AuditEvent], *, using: str) -> None:
    """Point each event whose agent fields were set (AuditEvent(user_agent=...)) at its row."""
    pending = [event for event in events if event.agent_pending is not None]
    if not pending:
        return
    ids = agent_ids((event.agent_pending for event in pending), using=using)  # type: ignore[misc]
    for event in pending:
        key: AgentKey = event.agent_pending  # type: ignore[assignment]
        event.agent_pending = None
        if key == NO_AGENT:
            event.agent = None
        else:
            agent = UserAgent(**dict(zip(AGENT_FIELDS, key, strict=True)))
            agent.id = ids[key]
            agent._state.adding, agent._state.db = False, using
            event.agent = agent


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def bulk_create(
        self, objs: Iterable[AuditEvent], *args: Any, **kwargs: Any
    ) -> list[AuditEvent]:
        """Point each event at its user agent's dictionary row first (agents_resolve)."""
        objs = list(objs)
        agents_resolve(objs, using=self.db)
        return super().bulk_create(objs, *args, **kwargs)


def _agent_property(index: int, name: str) -> property:
    def get(self: AuditEvent) -> str:
        if self.agent_pending is not None:
            return self.agent_pending[index]
        agent = self.agent if self.agent_id is not None else None
        # One field at a time: a list page loads only the browser and OS of its agents.
        return "" if agent is None else str(getattr(agent, AGENT_FIELDS[index]))

    def set(self: AuditEvent, value: str | None) -> None:
        key = list(self.agent_fields)
        key[index] = value or ""
        self.agent_pending = tuple(key)  # type: ignore[assignment]

    return property(get, set, doc=f"The client's {name}, as its UserAgent row records it.")


class AuditEvent(models.Model):
    """One security-relevant event. Append-only: the database refuses UPDATE and DELETE."""

    occurred_at = models.DateTimeField(default=timezone.now)
    # Plain columns, not enforced foreign keys: a row must outlive the user or organization it
    # names, and the table must be distributable by organization_id later.
    # The foreign keys get no index of their own: each leads a composite index below, and every
    # index is paid for again on every event written.
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SUCCESS)
    reason = models.CharField(max_length=128, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    target_label = models.CharField(max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # The client's user agent and its parse, in the dictionary (UserAgent); None when the
    # event had none (no request). Read as event.user_agent, .browser, .os, .device_type.
    agent = models.ForeignKey(
        UserAgent,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    device_id = models.CharField(max_length=16, blank=True)
    country = models.CharField(max_length=2, blank=True)
    city = models.CharField(max_length=128, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    session_hash = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Set by the database on insert, never by the application (db_default), so a row's position
    # in the API feed cannot be forged or forgotten.
    txid = models.BigIntegerField(
        null=True, blank=True, editable=False, db_default=CurrentTransactionId()
    )

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-occurred_at", "-id"], name="audit_org_time"),
            models.Index(
                fields=["organization", "event_type", "-occurred_at", "-id"],
                name="audit_org_type_time",
            ),
            models.Index(
                fields=["organization", "ip_address", "-occurred_at", "-id"],
                name="audit_org_ip_time",
            ),
            # A person's events: their own Activity Log, and the audit log's user filter (a user
            # belongs to one organization, so the organization is a filter on these rows, not a
            # key). Rows without the person (failed sign-ins of unknown names; most events have
            # no target) are left out: nothing looks them up, and each saves an insert.
            models.Index(
                fields=["actor", "-occurred_at", "-id"],
                name="audit_actor_time",
                condition=models.Q(actor__isnull=False),
            ),
            models.Index(
                fields=["target_user", "-occurred_at", "-id"],
                name="audit_target_time",
                condition=models.Q(target_user__isnull=False),
            ),
            # Country filter: a country an organization never saw must not scan its history.
            models.Index(
                fields=["organization", "country", "-occurred_at", "-id"],
                name="audit_org_country_time",
            ),
            # The Enterprise API's exactly-once feed, ordered by (txid, id).
            models.Index(fields=["organization", "txid", "id"], name="audit_org_txid"),
        ]

    # Agent fields set on an event not yet written (AuditEvent(user_agent=...), or assigned);
    # saving points the event at their dictionary row (agents_resolve).
    agent_pending: AgentKey | None = None

    def __str__(self) -> str:
        return f"{self.event_type} {self.outcome} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        agents_resolve([self], using=kwargs.get("using") or router.db_for_write(type(self)))
        super().save(*args, **kwargs)

    @property
    def agent_fields(self) -> AgentKey:
        if self.agent_pending is not None:
            return self.agent_pending
        if self.agent_id is None:
            return NO_AGENT
        agent = self.agent
        return NO_AGENT if agent is None else agent.key

    user_agent = _agent_property(0, "user agent string")
    browser = _agent_property(1, "browser")
    os = _agent_property(2, "operating system")
    device_type = _agent_property(3, "device type")

    @property
    def category(self) -> Category:
        return category_of(self.event_type)


class TorExitNode(models.Model):
    """An address on the Tor Project's list of exit relays, as an operator last loaded it.

    Replaced as a whole by `manage.py load_tor_exits PATH` (audit.tor); the anonymising-network
    alert rule looks sign-in addresses up here. Not an event: nothing else refers to its rows.
    """

    ip_address = models.GenericIPAddressField(unique=True)
    # The relay's fingerprint, when the list said (the exit-addresses format does; the bulk
    # list of addresses does not).
    fingerprint = models.CharField(max_length=40, blank=True)
    loaded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Tor exit {self.ip_address}"
