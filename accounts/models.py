"""Users, organizations (the tenants), memberships with roles, lockout state and sessions."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import ClassVar

import idna
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Tier(models.TextChoices):
    SMALL_BUSINESS = "small_business", "Small Business"
    MEDIUM_BUSINESS = "medium_business", "Medium Business"
    ENTERPRISE = "enterprise", "Enterprise"


TIER_RETENTION_DAYS = {
    Tier.SMALL_BUSINESS: 90,
    Tier.MEDIUM_BUSINESS: 365,
    Tier.ENTERPRISE: 7 * 365,
}
ENTERPRISE_RETENTION_BOUNDS = (365, 10 * 365)

# PCI DSS 8.3.4 asks for at most 10 attempts and at least 30 minutes; NIST SP 800-63B caps the
# attempts an organization may allow at 100.
LOCKOUT_THRESHOLD_MAX = 100

# Bounds of an organization's sign-in throttle (accounts.throttling; README, "Throttling"):
# (lowest, highest). Below the lowest burst an office would throttle itself; past the highest an
# address or account gets more free password checks than a throttle is for.
THROTTLE_IP_BURST_BOUNDS = (10, 10_000)
THROTTLE_ACCOUNT_BURST_BOUNDS = (10, 200)
# One attempt back every this many seconds: from one a second to one a day.
THROTTLE_REFILL_SECONDS_BOUNDS = (1, 24 * 60 * 60)
# An organization's allowlist: at most this many entries, none wider than an IPv4 /16 or an
# IPv6 /48 (one site); the platform's (settings.THROTTLE_ALLOWLIST) may go to /8 and /32.
THROTTLE_ALLOWLIST_MAX = 50
THROTTLE_ALLOWLIST_WIDEST = (16, 48)


class MfaPolicy(models.TextChoices):
    OFF = "off", "Not required"
    ALL = "all", "Required for every member"
    ROLES = "roles", "Required for the chosen roles"


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    tier = models.CharField(max_length=32, choices=Tier.choices, default=Tier.SMALL_BUSINESS)
    retention_days_override = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(ENTERPRISE_RETENTION_BOUNDS[0]),
            MaxValueValidator(ENTERPRISE_RETENTION_BOUNDS[1]),
        ],
        help_text="Enterprise only: keep events this many days instead of seven years.",
    )
    lockout_threshold = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(LOCKOUT_THRESHOLD_MAX)]
    )
    lockout_window_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    lockout_duration_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    mfa_policy = models.CharField(max_length=8, choices=MfaPolicy.choices, default=MfaPolicy.OFF)
    # Role values (see Role) that must use a second factor when mfa_policy is "roles".
    mfa_required_roles = models.JSONField(default=list, blank=True)
    # Role values whose members must have a phishing-resistant method, a passkey (NIST SP
    # 800-63B-4 AAL3-style): an authenticator app alone does not satisfy it. Always a subset of
    # the roles the MFA policy covers (accounts.forms.MfaPolicyForm).
    mfa_passkey_roles = models.JSONField(default=list, blank=True)
    # The sign-in throttle's limits for this organization's accounts and addresses; empty: the
    # platform's defaults (settings.THROTTLE_*). Bounded by accounts.forms.ThrottleSettingsForm
    # and by the constraints below.
    throttle_ip_burst = models.PositiveIntegerField(null=True, blank=True)
    throttle_ip_refill_seconds = models.PositiveIntegerField(null=True, blank=True)
    throttle_account_burst = models.PositiveIntegerField(null=True, blank=True)
    throttle_account_refill_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Networks (CIDR strings, normalised) whose attempts at this organization are never throttled.
    throttle_allowlist = models.JSONField(default=list, blank=True)
    # The version of the organization's access policies (policies app): new at every change.
    # Read with the organization on every request (the signed-in user's membership brings it),
    # so the policies compiled in a process are known current without a query or a Redis trip.
    access_policy_token = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lockout_threshold__gte=1, lockout_threshold__lte=100),
                name="org_lockout_threshold_1_to_100",
            ),
            models.CheckConstraint(
                condition=models.Q(lockout_window_minutes__gte=1, lockout_duration_minutes__gte=1),
                name="org_lockout_periods_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(retention_days_override__isnull=True)
                | models.Q(
                    tier=Tier.ENTERPRISE,
                    retention_days_override__gte=ENTERPRISE_RETENTION_BOUNDS[0],
                    retention_days_override__lte=ENTERPRISE_RETENTION_BOUNDS[1],
                ),
                name="org_retention_override_enterprise_only",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(throttle_ip_burst__isnull=True)
                    | models.Q(
                        throttle_ip_burst__gte=THROTTLE_IP_BURST_BOUNDS[0],
                        throttle_ip_burst__lte=THROTTLE_IP_BURST_BOUNDS[1],
                    )
                )
                & (
                    models.Q(throttle_account_burst__isnull=True)
                    | models.Q(
                        throttle_account_burst__gte=THROTTLE_ACCOUNT_BURST_BOUNDS[0],
                        throttle_account_burst__lte=THROTTLE_ACCOUNT_BURST_BOUNDS[1],
                    )
                )
                & (
                    models.Q(throttle_ip_refill_seconds__isnull=True)
                    | models.Q(
                        throttle_ip_refill_seconds__gte=THROTTLE_REFILL_SECONDS_BOUNDS[0],
                        throttle_ip_refill_seconds__lte=THROTTLE_REFILL_SECONDS_BOUNDS[1],
                    )
                )
                & (
                    models.Q(throttle_account_refill_seconds__isnull=True)
                    | models.Q(
                        throttle_account_refill_seconds__gte=THROTTLE_REFILL_SECONDS_BOUNDS[0],
                        throttle_account_refill_seconds__lte=THROTTLE_REFILL_SECONDS_BOUNDS[1],
                    )
                ),
                name="org_throttle_within_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def retention_days(self) -> int:
        if self.tier == Tier.ENTERPRISE and self.retention_days_override:
            return self.retention_days_override
        return TIER_RETENTION_DAYS[Tier(self.tier)]

    @property
    def has_api(self) -> bool:
        return self.tier == Tier.ENTERPRISE

    def mfa_required_for(self, role: str) -> bool:
        """Tell whether a member with this role must have a second factor."""
        if self.mfa_policy == MfaPolicy.ALL:
            return True
        return self.mfa_policy == MfaPolicy.ROLES and role in (self.mfa_required_roles or [])

    def passkey_required_for(self, role: str) -> bool:
        """Tell whether a member with this role must have a passkey (phishing-resistant)."""
        return self.mfa_required_for(role) and role in (self.mfa_passkey_roles or [])


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def by_email(self, address: str) -> models.QuerySet[User]:
        """Users with this address in any case, found through the unique index on lower(email).

        (email__iexact compiles to UPPER(email) = UPPER(%s), which no index serves: a sequential
        scan of every user on every sign-in.)
        """
        return self.alias(email_lower=Lower("email")).filter(email_lower=address.lower())

    def get_by_natural_key(self, username: str | None) -> User:
        return self.by_email(username or "").get()

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=email.strip().lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; signs in with an email address."""

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    # The IANA zone the person reads times in ("Europe/Berlin"); blank until their browser tells
    # it after their first sign-in (accounts.timezones), UTC meanwhile.
    time_zone = models.CharField(max_length=64, blank=True)
    # Set when the person said a security event was not them: until they choose a new password,
    # every signed-in page sends them to do so (accounts.middleware).
    password_change_required_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()

    @property
    def organization(self) -> Organization | None:
        membership = getattr(self, "membership", None)
        return membership.organization if membership else None


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    ADMINISTRATOR = "administrator", "Administrator"
    SECURITY_ANALYST = "security_analyst", "Security analyst"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"


class Membership(models.Model):
    """A user's place in one organization; a user belongs to at most one."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "role"], name="membership_org_role")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.get_role_display()})"


class DomainProof(models.TextChoices):
    """How an organization showed that an email domain is its own."""

    DNS_TXT = "dns_txt", "DNS TXT record"
    OPERATOR = "operator", "Set by the platform operator"


def domain_verification_token() -> str:
    """A fresh value for the TXT record that proves a domain (published, so not a secret)."""
    return secrets.token_hex(16)


class OrganizationDomain(models.Model):
    """An email domain an organization's people sign in with, pending until proved.

    Once verified, a failed sign-in for an unknown address at the domain belongs to the
    organization (accounts.lockout.login_failure_record). Several organizations may list a
    domain while it is pending; only one may have it verified (orgdomain_verified_once), and a
    sign-in finds that one through the constraint's index.
    """

    # An organization's domains are read through orgdomain_listed_once (organization, domain).
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="email_domains", db_index=False
    )
    # Lower-case IDNA A-labels without a trailing dot (accounts.domains.domain_normalise).
    domain = models.CharField(max_length=253)
    # Blank while pending.
    proof = models.CharField(max_length=16, choices=DomainProof.choices, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_token = models.CharField(max_length=64, default=domain_verification_token)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(verified_at__isnull=False),
                name="orgdomain_verified_once",
                violation_error_message="Another organization has verified this domain.",
            ),
            models.UniqueConstraint(
                fields=["organization", "domain"],
                name="orgdomain_listed_once",
                violation_error_message="The organization already lists this domain.",
            ),
            models.CheckConstraint(
                condition=models.Q(domain=Lower("domain"))
                & ~models.Q(domain="")
                & ~models.Q(domain__endswith="."),
                name="orgdomain_domain_normalised",
            ),
            models.CheckConstraint(
                condition=models.Q(verified_at__isnull=True, proof="")
                | models.Q(verified_at__isnull=False, proof__in=DomainProof.values),
                name="orgdomain_verified_with_proof",
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def unicode_domain(self) -> str:
        """The domain as people write it (bücher.example for xn--bcher-kva.example)."""
        try:
            return str(idna.decode(self.domain))
        except idna.IDNAError:
            return self.domain


class LockScope(models.TextChoices):
    """Whom a lock refuses (accounts.familiarity tells familiar sources from unfamiliar ones)."""

    ALL = "all", "Every source"  # familiar failures reached the threshold
    UNFAMILIAR = "unfamiliar", "Unfamiliar sources"  # unfamiliar failures reached it


class LockoutState(models.Model):
    """Per-account lockout bookkeeping; failures themselves are counted from audit events.

    Two locks, each with its own count (smart lockout): failures from familiar sources lock
    every source out (the `locked_*` fields), failures from unfamiliar sources lock only
    unfamiliar sources out (the `unfamiliar_*` fields), so a stranger cannot lock the owner out.
    """

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, primary_key=True, related_name="lockout_state"
    )
    # Familiar failures before this instant no longer count (set when the lock of every source
    # is set or released; a successful sign-in resets the count through last_login).
    counter_reset_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Unfamiliar failures before this instant no longer count (set when the unfamiliar lock is
    # set or released; a sign-in does not reset it: the owner's success says nothing of theirs).
    unfamiliar_counter_reset_at = models.DateTimeField(null=True, blank=True)
    unfamiliar_locked_at = models.DateTimeField(null=True, blank=True)
    unfamiliar_locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"lockout state of {self.user_id}"

    def is_locked(self, now: datetime) -> bool:
        """Tell whether any lock (of every source, or of unfamiliar ones) holds now."""
        return bool(self.scopes_locked(now))

    def refuses(self, *, familiar: bool, now: datetime) -> bool:
        """Tell whether an attempt from a familiar (or unfamiliar) source is refused now."""
        locked = self.scopes_locked(now)
        return LockScope.ALL in locked or (not familiar and LockScope.UNFAMILIAR in locked)

    def lock_of(self, scope: str) -> tuple[datetime | None, datetime | None]:
        """(locked_at, locked_until) of the scope's lock."""
        if scope == LockScope.UNFAMILIAR:
            return self.unfamiliar_locked_at, self.unfamiliar_locked_until
        return self.locked_at, self.locked_until

    def scopes_locked(self, now: datetime) -> list[str]:
        """The scopes whose lock holds now."""
        return [s for s in LockScope.values if (until := self.lock_of(s)[1]) and until > now]

    def scopes_expired(self, now: datetime) -> list[str]:
        """The scopes holding a lock whose time is up and that is not yet released."""
        return [s for s in LockScope.values if (until := self.lock_of(s)[1]) and until <= now]


class SessionEndReason(models.TextChoices):
    LOGOUT = "logout"
    REVOKED_BY_USER = "revoked_by_user"
    REVOKED_BY_ADMIN = "revoked_by_admin"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason code
    EXPIRED = "expired"
    # An access policy no longer admits the session (its network, its hours; policies app).
    POLICY = "policy"


class UserSession(models.Model):
    """One signed-in browser session, kept after it ends for the user's own security page."""

    # Every sign-in inserts a row, so it carries only the indexes its queries use: the user's
    # sessions through usersession_user_open, a session by its hash through the unique
    # constraint (no LIKE twin of either), nothing by session_key.
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="user_sessions", db_index=False
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The live Django session key, kept to revoke the session; it changes when the key is cycled
    # (password change). Never copied into audit events: those carry session_hash.
    session_key = models.CharField(max_length=40)
    session_hash = models.CharField(max_length=16)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    browser = models.CharField(max_length=64, blank=True)
    os = models.CharField(max_length=64, blank=True)
    device_type = models.CharField(max_length=16, blank=True)
    device_id = models.CharField(max_length=16, blank=True)
    # The network of ip_address (IPv4 /24, IPv6 /64, accounts.familiarity.network_of): a sign-in
    # attempt from it is familiar to the account for a while.
    network = models.CharField(max_length=43, blank=True)
    country = models.CharField(max_length=2, blank=True)
    city = models.CharField(max_length=128, blank=True)
    # Where the session was last recorded moving to (session.location_changed): another network
    # than the one it started in (ip_address's). Empty while it never left; never moved back.
    moved_ip = models.GenericIPAddressField(null=True, blank=True)
    moved_network = models.CharField(max_length=43, blank=True)
    moved_country = models.CharField(max_length=2, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=SessionEndReason.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session_hash"], name="usersession_hash_unique")
        ]
        indexes = [
            models.Index(fields=["user", "ended_at"], name="usersession_user_open"),
            models.Index(
                fields=["started_at"],
                name="usersession_open_started",
                condition=models.Q(ended_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.session_hash} of {self.user_id}"


class SecurityNotice(models.Model):
    """An email owed to a user about a change to their account security (NIST SP 800-63B).

    Written in the transaction that records the change, so the database, not the broker, says
    what is still to send: a task sends it after commit, and a sweep sends what no task did
    (broker down, worker dead). A sender claims the row for a lease, sends, then marks it sent:
    at least once, never lost (a sender that dies after sending but before marking sends twice).
    """

    # The audit event the email tells about (events are append-only, so the ledger is separate).
    event_id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A sender holds the row until then; past it, the sender is taken for dead.
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Sent, or found with nothing (left) to send.
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="securitynotice_unsent",
                condition=models.Q(sent_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"security notice for event {self.event_id}"


class ThrottleBucket(models.Model):
    """One token bucket of the sign-in throttle, for when Redis is unset or down.

    accounts.throttling keeps its buckets in Redis when REDIS_URL is set; without Redis (make
    run) or, by THROTTLE_REDIS_DOWN=database, while Redis is down, the same buckets live here,
    one row per client IP or account and purpose, updated under a row lock. `window_*` count the
    throttled attempts of the current and the previous event window (login.throttled's count).
    Not an event: rows are overwritten, and the ones idle for a day are deleted.
    """

    key = models.CharField(max_length=300, unique=True)
    tokens = models.FloatField()
    updated_at = models.DateTimeField()
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)
    previous_window_started_at = models.DateTimeField(null=True, blank=True)
    previous_window_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["updated_at"], name="throttlebucket_updated")]

    def __str__(self) -> str:
        return f"throttle bucket {self.key}"


class SearchLog(models.TextChoices):
    AUDIT = "audit", "Audit Log"
    ACTIVITY = "activity", "Activity Log"


class SavedSearch(models.Model):
    """A search of the Audit Log or the Activity Log that a person kept by name, for themselves
    or shared with their organization."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="saved_searches"
    )
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="saved_searches")
    log = models.CharField(max_length=16, choices=SearchLog.choices)
    name = models.CharField(max_length=100)
    # The page's query string (q, the time preset and the Advanced fields) as it was saved. It
    # is read again each time the search opens, so one whose syntax became invalid since still
    # opens, with the message that says why.
    query = models.CharField(max_length=2000)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "owner", "log", "name"], name="savedsearch_one_name"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "log", "shared"], name="savedsearch_org_log"),
        ]

    def __str__(self) -> str:
        return self.name


class ActivityAnswer(models.TextChoices):
    """A member's answer to "Was this you?" about one of their own events."""

    ME = "me", "Yes, it was me"
    NOT_ME = "not_me", "No, it was not me"


class ActivityCheck(models.Model):
    """A member's answer about one of their own security events (their Profile).

    One per person and event: answering again changes nothing, except that "it was me" may
    still become "it was not me" (securing an account is never refused).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="activity_checks")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="activity_checks"
    )
    # The audit event (a plain id: events are append-only and may be purged before this row).
    event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=64)
    answer = models.CharField(max_length=8, choices=ActivityAnswer.choices)
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event_id"], name="activitycheck_user_event")
        ]
        indexes = [models.Index(fields=["organization", "event_id"], name="activitycheck_event")]

    def __str__(self) -> str:
        return f"{self.user_id} on event {self.event_id}: {self.answer}"
