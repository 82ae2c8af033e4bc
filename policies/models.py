"""An organization's access policies: where (networks), when (hours) and how long (sessions)
its people may be signed in. Enforced through accounts.enforcement (policies.enforcement)."""

from __future__ import annotations

from datetime import time

from django.db import models

from accounts.models import Organization, Role


class NetworkAction(models.TextChoices):
    ALLOW_ONLY = "allow_only", "Allow only from"
    BLOCK = "block", "Block"


class SessionLimitAction(models.TextChoices):
    END_OLDEST = "end_oldest", "End the oldest session"
    REFUSE = "refuse", "Refuse the new sign-in"


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# A rule or window for every role: role is blank.
EVERYONE = ""
ROLE_CHOICES = [(EVERYONE, "Everyone"), *Role.choices]


class AccessPolicy(models.Model):
    """The organization's policy-wide settings (its version: Organization.access_policy_token)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="access_policy"
    )
    # The zone the hours and date exceptions are read in (accounts.timezones).
    time_zone = models.CharField(max_length=64, default="UTC")
    # Administrators may always sign in from these networks, whatever the rules say.
    break_glass = models.ForeignKey(
        "NetworkList", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    max_sessions = models.PositiveSmallIntegerField(null=True, blank=True)
    session_limit_action = models.CharField(
        max_length=16, choices=SessionLimitAction.choices, default=SessionLimitAction.END_OLDEST
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Access policy of organization {self.organization_id}"


class NetworkList(models.Model):
    """A named list of networks (CIDRs, IPv4 and IPv6, none overlapping another of the list)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="network_lists", db_index=False
    )
    name = models.CharField(max_length=80)
    cidrs = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="networklist_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class NetworkRule(models.Model):
    """Allow sign-in only from a list's networks, or block them, for a role or everyone."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="network_rules"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES, blank=True)
    action = models.CharField(max_length=16, choices=NetworkAction.choices)
    network_list = models.ForeignKey(NetworkList, on_delete=models.PROTECT, related_name="rules")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return (
            f"{self.get_action_display()} list {self.network_list_id} for {self.role or 'everyone'}"
        )


class TimeWindow(models.Model):
    """Days and hours a role (or everyone) may sign in; with any window for a role, only then."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="time_windows"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES, blank=True)
    # ISO weekdays, Monday 1 to Sunday 7.
    days = models.JSONField(default=list)
    starts = models.TimeField()
    # Exclusive; 23:59:59.999999 stands for the end of the day (24:00).
    ends = models.TimeField()
    # Kept but not in force (the demo's working hours for members).
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.role or 'everyone'}: {self.days_label} {self.hours_label}"

    @property
    def days_label(self) -> str:
        return ", ".join(DAY_NAMES[day - 1] for day in sorted(self.days))

    @property
    def hours_label(self) -> str:
        ends = "24:00" if self.ends == time.max else f"{self.ends:%H:%M}"
        return f"{self.starts:%H:%M}–{ends}"


class TimeException(models.Model):
    """A date on which a role (or everyone) may not sign in at all, or may all day."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="time_exceptions"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES, blank=True)
    on = models.DateField()
    allowed = models.BooleanField(default=False)
    note = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.on.isoformat()} {'open' if self.allowed else 'closed'}"


class SessionPolicy(models.Model):
    """A role's session limits; a role without a row has the defaults (policies.compiled)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="session_policies", db_index=False
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    idle_minutes = models.PositiveIntegerField(null=True, blank=True)
    lifetime_hours = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "role"], name="sessionpolicy_unique")
        ]

    def __str__(self) -> str:
        return f"Session limits of {self.role}"
