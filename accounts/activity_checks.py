""" "Was this you?": a member's recent security activity on their Profile, and their answers.

The activity is what an account's owner should notice if someone else did it (Google Account's
"Recent security activity"): sign-ins from a device or place the account had not signed in from
before (as accounts.familiarity judges sources: the device cookie, the place in the last
FAMILIAR_NETWORK_DAYS), and changes of the second factor and the password. The first sign-in of
an account is new by nature and not asked about.

"Yes, it was me" is recorded. "No, secure my account" ends every session of the person's (the
one answering too), makes their password stop working at once, emails them a link to choose a
new one (the password reset form serves such an account too, should the link be lost), and is
recorded as activity.reported, which the alert rule "reported_by_member" (alerts.detectors)
raises to the organization's security team like any other finding.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from audit.models import AuditEvent, EventType
from audit.services import event_record

from .familiarity import FAMILIAR_NETWORK_DAYS, network_of
from .models import ActivityAnswer, ActivityCheck, SessionEndReason, User
from .sessions import sessions_end

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

# How far back the Profile asks, and how many events it shows at most.
LOOKBACK_DAYS = 30
MAX_SHOWN = 20
# The changes a person is asked about besides new sign-ins: their own, to how they sign in.
CHANGE_TITLES = {
    EventType.MFA_DEVICE_ADDED: "Two-step verification method added",
    EventType.MFA_DEVICE_REMOVED: "Two-step verification method removed",
    EventType.MFA_BACKUP_CODES_GENERATED: "New backup codes generated",
    EventType.PASSWORD_CHANGED: "Password changed",
    EventType.PASSWORD_RESET_COMPLETED: "Password reset by email",
}
ANSWERABLE_TYPES = frozenset({EventType.LOGIN_SUCCEEDED, *CHANGE_TITLES})
# Sign-ins read to judge whether a recent one was new (a person signs in a few times a day).
MAX_EARLIER_SIGN_INS = 5000


@dataclass(frozen=True)
class ActivityItem:
    """One recent event the person is asked about."""

    event: AuditEvent
    title: str
    new_device: bool = False
    new_place: bool = False
    answer: str = ""
    answered_at: Any = None

    @property
    def answered(self) -> bool:
        return bool(self.answer)

    @property
    def answer_label(self) -> str:
        return ActivityAnswer(self.answer).label if self.answer else ""


def _organization_id(user: User) -> int | None:
    organization_id = getattr(getattr(user, "membership", None), "organization_id", None)
    return organization_id if isinstance(organization_id, int) else None


def _own_events(user: User) -> Any:
    """The user's own events in their organization (none for a platform user)."""
    organization_id = _organization_id(user)
    if organization_id is None:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(organization=organization_id, actor_id=user.pk)


def _place_key(country: str, ip: str | None) -> str:
    """Where a sign-in came from: its country when located, else its network."""
    return f"country:{country}" if country else f"net:{network_of(ip)}" if ip else ""


def _sign_in_title(new_device: bool, new_place: bool) -> str:
    if new_device and new_place:
        return "Sign-in from a new device and place"
    return "Sign-in from a new device" if new_device else "Sign-in from a new place"


def _new_sign_ins(user: User, since: Any) -> list[tuple[AuditEvent, bool, bool]]:
    """The user's sign-ins since `since` from a device or place new to the account, newest first."""
    sign_ins = _own_events(user).filter(event_type=EventType.LOGIN_SUCCEEDED)
    recent = list(
        sign_ins.filter(occurred_at__gte=since)
        .select_related("agent")
        .order_by("-occurred_at", "-id")[:200]
    )
    if not recent:
        return []
    first_ever = sign_ins.aggregate(first=Min("id"))["first"]
    devices = {event.device_id for event in recent if event.device_id}
    first_by_device = dict(
        sign_ins.filter(device_id__in=devices)
        .values("device_id")
        .annotate(first=Min("id"))
        .values_list("device_id", "first")
    )
    oldest = recent[-1].occurred_at - timedelta(days=FAMILIAR_NETWORK_DAYS)
    # The newest ones when there are more (oldest first after the reversal).
    earlier = list(
        sign_ins.filter(occurred_at__gte=oldest)
        .order_by("-occurred_at", "-id")
        .values_list("id", "occurred_at", "country", "ip_address")[:MAX_EARLIER_SIGN_INS]
    )[::-1]
    # Each place's sign-ins in (time, id) order: a place was seen before an event when the
    # latest of its sign-ins before the event is recent enough.
    by_place: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    for pk, at, country, ip in earlier:
        by_place[_place_key(country, ip)].append((at, pk))
    found = []
    for event in recent:
        if event.pk == first_ever:
            continue
        new_device = bool(event.device_id) and first_by_device.get(event.device_id) == event.pk
        place = _place_key(event.country, event.ip_address)
        visits = by_place.get(place, [])
        before = bisect_left(visits, (event.occurred_at, event.pk))
        window_start = event.occurred_at - timedelta(days=FAMILIAR_NETWORK_DAYS)
        seen = before > 0 and visits[before - 1][0] >= window_start
        new_place = bool(place) and not seen
        if new_device or new_place:
            found.append((event, new_device, new_place))
    return found


def security_activity_of(user: User) -> list[ActivityItem]:
    """The person's recent sign-ins from new devices and places and their MFA and password
    changes, newest first, each with their answer if they gave one."""
    since = timezone.now() - timedelta(days=LOOKBACK_DAYS)
    items: list[tuple[AuditEvent, str, bool, bool]] = [
        (event, _sign_in_title(device, place), device, place)
        for event, device, place in _new_sign_ins(user, since)
    ]
    changes = (
        _own_events(user)
        .filter(event_type__in=list(CHANGE_TITLES), occurred_at__gte=since)
        .select_related("agent")
        .order_by("-occurred_at", "-id")[:MAX_SHOWN]
    )
    items += [(event, CHANGE_TITLES[event.event_type], False, False) for event in changes]
    items.sort(key=lambda item: (item[0].occurred_at, item[0].pk), reverse=True)
    items = items[:MAX_SHOWN]
    answers = {
        check.event_id: check
        for check in ActivityCheck.objects.filter(
            user=user, event_id__in=[event.pk for event, *_ in items]
        )
    }
    result = []
    for event, title, new_device, new_place in items:
        check = answers.get(event.pk)
        result.append(
            ActivityItem(
                event=event,
                title=title,
                new_device=new_device,
                new_place=new_place,
                answer=check.answer if check else "",
                answered_at=check.answered_at if check else None,
            )
        )
    return result


def answerable_event_of(user: User, event_id: int) -> AuditEvent | None:
    """The person's own event that they may answer about; None for anyone else's, or another
    kind of event."""
    event: AuditEvent | None = (
        _own_events(user)
        .filter(pk=event_id, event_type__in=list(ANSWERABLE_TYPES))
        .select_related("agent")
        .first()
    )
    return event


def event_title(event: AuditEvent) -> str:
    if event.event_type == EventType.LOGIN_SUCCEEDED:
        return "a sign-in"
    title = CHANGE_TITLES.get(EventType(event.event_type), event.event_type)
    return title.lower()


@dataclass(frozen=True)
class CheckOutcome:
    check: ActivityCheck
    changed: bool  # False: the same answer was given before (a replay), nothing was done
    sessions_ended: int = 0


def activity_check_record(
    *, user: User, event: AuditEvent, answer: str, request: HttpRequest
) -> CheckOutcome:
    """Record the person's answer about their own event; for "not me", secure the account.

    Idempotent: the same answer again does nothing. "Not me" after "me" is taken (and secures
    the account); "me" after "not me" changes nothing.
    """
    if answer not in ActivityAnswer.values:
        raise ValueError(f"unknown answer {answer!r}")
    organization_id = _organization_id(user)
    if organization_id is None or event.organization_id != organization_id:
        raise ValueError("only a member answers, and only about their organization's events")
    with transaction.atomic():
        check = (
            ActivityCheck.objects.select_for_update().filter(user=user, event_id=event.pk).first()
        )
        if check is not None and (check.answer == answer or answer == ActivityAnswer.ME):
            return CheckOutcome(check=check, changed=False)
        if check is None:
            try:
                with transaction.atomic():
                    check = ActivityCheck.objects.create(
                        user=user,
                        organization_id=organization_id,
                        event_id=event.pk,
                        event_type=event.event_type,
                        answer=answer,
                    )
            except IntegrityError:  # the same person answered in another tab a moment ago
                check = ActivityCheck.objects.select_for_update().get(user=user, event_id=event.pk)
                if check.answer == answer or answer == ActivityAnswer.ME:
                    return CheckOutcome(check=check, changed=False)
        if check.answer != answer:
            check.answer, check.answered_at = answer, timezone.now()
            check.save(update_fields=["answer", "answered_at"])
        details: dict[str, Any] = {
            "event_id": event.pk,
            "event_type": event.event_type,
            "event_title": event_title(event),
            "event_at": event.occurred_at.isoformat(),
            "event_ip": event.ip_address,
        }
        if answer == ActivityAnswer.ME:
            event_record(
                event_type=EventType.ACTIVITY_CONFIRMED,
                actor=user,
                details=details,
                request=request,
            )
            return CheckOutcome(check=check, changed=True)
        # Every other session ends; this one, whose owner just said "not me", chooses a new
        # password at once (the password gate, accounts.middleware, sends it there). The old
        # password stops working now, everywhere; the emailed link is the way back in should
        # this session be lost before the new one is chosen.
        ended = sessions_end(
            user=user, reason=SessionEndReason.REVOKED_BY_USER, request=request, keep_current=True
        )
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.set_unusable_password()
        locked.password_change_required_at = timezone.now()
        locked.save(update_fields=["password", "password_change_required_at"])
        # The session that answered goes on under the changed credential (as after a password
        # change): Django would otherwise sign it out with the rest.
        update_session_auth_hash(request, locked)
        event_record(
            event_type=EventType.ACTIVITY_REPORTED,
            actor=user,
            # "credential", not "password": audit.sanitize drops keys that name a password.
            details={
                **details,
                "sessions_ended": ended,
                "credential_change_required": True,
                "credential_disabled": True,
                "reset_link_sent_to": user.email,
            },
            request=request,
        )
        transaction.on_commit(lambda: reset_link_send(user=locked, request=request))
    return CheckOutcome(check=check, changed=True, sessions_ended=ended)


def secured_awaiting_reset(user: User) -> bool:
    """Whether "No, secure my account" took the account's password away and no new one has been
    chosen yet: the password reset form still serves such an account."""
    return not user.has_usable_password() and user.password_change_required_at is not None


def reset_link_send(*, user: User, request: HttpRequest) -> None:
    """Email the person a link to choose a new password after "No, secure my account": Django's
    reset link (it works once, for settings.PASSWORD_RESET_TIMEOUT; its token is made from the
    password as it is now). The token is only ever in the email, never in an event or a log."""
    context = {
        "email": user.email,
        "domain": request.get_host(),
        "protocol": "https" if request.is_secure() else "http",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
        "timeout_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = render_to_string("accounts/email/account_secured_subject.txt", context)
    body = render_to_string("accounts/email/account_secured.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [user.email])
    except Exception:  # the page told them "Forgot your password?" works too
        logger.exception("The reset link after a report could not be sent to user %s", user.pk)
