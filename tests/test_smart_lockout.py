"""Smart lockout: failures from familiar and unfamiliar sources are counted and locked apart.

Everything goes through the real sign-in view. A browser is a test Client with its own
REMOTE_ADDR; it keeps the device cookie the app's middleware sets on its first response, as a
browser does. The owner's browser is familiar because it signed in (its cookie, and its /24).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection, connections, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.familiarity import Source, attempt_source, network_of
from accounts.forms import SIGN_IN_REFUSED
from accounts.lockout import lockouts_release_expired
from accounts.mfa import PENDING_SALT, PENDING_SESSION_KEY
from accounts.models import LockoutState, Role, UserSession
from audit.models import AuditEvent, EventType, Reason

from .factories import PASSWORD, OrganizationFactory, member
from .helpers import all_at_once, events, sign_in, wait_for_a_blocked_statement
from .mfa_support import code_for, second_step, totp_device

pytestmark = pytest.mark.django_db

OWNER_IP = "203.0.113.10"
OWNER_NEIGHBOUR_IP = "203.0.113.200"  # same /24
ATTACKER_IP = "198.51.100.66"
ELSEWHERE_IP = "192.0.2.44"
LOGOUT_URL = reverse("accounts:logout")
MEMBERS_URL = reverse("accounts:members")
SECURITY_URL = reverse("accounts:security")


def browser(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip)


def owner_browser(user, ip: str = OWNER_IP, *, device=None) -> Client:
    """A browser from which the owner signed in (and out): familiar to the account from now."""
    client = browser(ip)
    response = sign_in(client, user.email)
    if device is not None:
        response = second_step(client, code_for(device))
    assert response.status_code == 303, "the owner's first sign-in failed"
    client.post(LOGOUT_URL)
    return client


def fail(client: Client, user, times: int) -> list[int]:
    return [sign_in(client, user.email, "wrong password").status_code for _ in range(times)]


def signs_in(client: Client, user) -> bool:
    response = sign_in(client, user.email)
    signed_in: bool = response.status_code == 303
    if signed_in:
        client.post(LOGOUT_URL)
    else:
        assert SIGN_IN_REFUSED in response.content.decode()
    return signed_in


def last_source() -> str:
    return str(events(EventType.LOGIN_FAILED)[-1].details["source"])


def checked(source: str) -> list[AuditEvent]:
    """The attempts whose secret was checked and wrong, from that class of source."""
    return [
        e
        for e in events(EventType.LOGIN_FAILED)
        if e.reason in (Reason.INVALID_CREDENTIALS, Reason.MFA_FAILED)
        and e.details["source"] == source
    ]


def triggered(scope: str) -> list[AuditEvent]:
    return [e for e in events(EventType.LOCKOUT_TRIGGERED) if e.details["scope"] == scope]


# --- Which sources are familiar ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.10", "203.0.113.0/24"),
        ("2001:db8:1:2:aaaa::10", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.10", "203.0.113.0/24"),  # an IPv4 client on a dual-stack socket
        ("", ""),
        ("not an address", ""),
    ],
)
def test_the_network_is_the_ipv4_24_or_the_ipv6_64(ip, network):
    assert network_of(ip) == network


def test_a_browser_that_never_signed_in_is_unfamiliar():
    user = member()
    fail(browser(OWNER_IP), user, 1)
    assert last_source() == Source.UNFAMILIAR


def test_the_browser_the_owner_signed_in_from_is_familiar():
    user = member()
    client = owner_browser(user)
    fail(client, user, 1)
    assert last_source() == Source.FAMILIAR


def test_a_new_device_on_a_familiar_network_is_familiar():
    user = member()
    owner_browser(user, OWNER_IP)
    fail(browser(OWNER_NEIGHBOUR_IP), user, 1)
    assert last_source() == Source.FAMILIAR


def test_a_known_device_cookie_from_a_new_network_is_familiar():
    user = member()
    client = owner_browser(user, OWNER_IP)
    client.defaults["REMOTE_ADDR"] = ELSEWHERE_IP  # the laptop on a hotel's network
    fail(client, user, 1)
    assert last_source() == Source.FAMILIAR


def test_a_forged_device_cookie_that_never_signed_in_is_unfamiliar():
    user = member()
    owner_browser(user, OWNER_IP)
    attacker = browser(ATTACKER_IP)
    attacker.cookies[settings.DEVICE_COOKIE_NAME] = "made-up-cookie-value-0123456789"
    fail(attacker, user, 1)
    assert last_source() == Source.UNFAMILIAR


def test_a_device_that_signed_in_to_another_account_is_unfamiliar_to_this_one():
    user, other = member(), member()
    client = owner_browser(other, ELSEWHERE_IP)
    fail(client, user, 1)
    assert last_source() == Source.UNFAMILIAR


def test_a_right_password_without_the_second_step_makes_nothing_familiar():
    user = member()
    totp_device(user)
    attacker = browser(ATTACKER_IP)
    assert sign_in(attacker, user.email).status_code == 303  # on to the second step, no further
    fail(attacker, user, 1)
    assert last_source() == Source.UNFAMILIAR


def test_a_network_not_signed_in_from_for_90_days_is_unfamiliar_again_but_the_device_is_not():
    user = member()
    client = owner_browser(user, OWNER_IP)
    UserSession.objects.filter(user=user).update(started_at=timezone.now() - timedelta(days=91))

    fail(browser(OWNER_NEIGHBOUR_IP), user, 1)
    assert last_source() == Source.UNFAMILIAR
    fail(client, user, 1)
    assert last_source() == Source.FAMILIAR


def test_ipv6_networks_are_familiar_by_their_64():
    user = member()
    owner_browser(user, "2001:db8:1:2::10")
    fail(browser("2001:db8:1:2:ffff::1"), user, 1)
    assert last_source() == Source.FAMILIAR
    fail(browser("2001:db8:1:3::1"), user, 1)
    assert last_source() == Source.UNFAMILIAR


def test_the_source_is_decided_with_one_query_once_per_request():
    user = member()
    owner_browser(user)
    request = RequestFactory().post("/sign-in/", REMOTE_ADDR=OWNER_NEIGHBOUR_IP)

    with CaptureQueriesContext(connection) as queries:
        assert attempt_source(user=user, request=request) is Source.FAMILIAR
        assert attempt_source(user=user, request=request) is Source.FAMILIAR
    assert len(queries.captured_queries) == 1


# --- The attack of the issue, and the owner ---------------------------------------------------


def test_one_unfamiliar_client_cannot_lock_twelve_owners_out_of_their_browsers(lockout_alone):
    # The lockout alone: its 144 attempts from one address would meet the per-IP throttle at
    # the 101st (tests/test_throttling.py runs this attack with the throttle in front).
    organization = OrganizationFactory()
    owners = [member(organization) for _ in range(12)]
    browsers = [owner_browser(user) for user in owners]
    attacker = browser(ATTACKER_IP)

    for user in owners:
        assert fail(attacker, user, 12) == [200] * 12

    assert len(triggered("unfamiliar")) == 12
    assert triggered("all") == []
    for user, client in zip(owners, browsers, strict=True):
        assert signs_in(client, user), f"{user.email} was locked out of their own browser"
        assert not signs_in(attacker, user)  # the attacker is locked out, right password or not


def test_the_owner_with_a_second_factor_still_signs_in_with_it(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    client = owner_browser(user, device=device)
    attacker = browser(ATTACKER_IP)
    fail(attacker, user, 10)

    assert sign_in(client, user.email).status_code == 303  # on to the second step
    response = second_step(client, code_for(device, steps_from_now=1))
    assert response.status_code == 303
    assert response["Location"] == reverse("accounts:profile")
    [_, signed_in] = events(EventType.LOGIN_SUCCEEDED)
    assert signed_in.details["method"] == "password+totp"
    # The attacker, even with the password, is refused before any second step.
    refused = sign_in(attacker, user.email)
    assert refused.status_code == 200 and SIGN_IN_REFUSED in refused.content.decode()


def test_an_unfamiliar_client_gets_no_check_after_the_threshold(counted_checks):
    user = member()
    client = owner_browser(user)
    counted_checks.reset()
    attacker = browser(ATTACKER_IP)

    fail(attacker, user, 25)
    assert not signs_in(attacker, user)

    assert counted_checks.verified == 10
    refused = events(EventType.LOGIN_FAILED, reason=Reason.ACCOUNT_LOCKED)
    assert len(refused) == 16
    assert {e.details["source"] for e in refused} == {"unfamiliar"}
    [lock] = triggered("unfamiliar")
    assert lock.details["failures"] == 10
    assert lock.ip_address == ATTACKER_IP
    assert signs_in(client, user)
    assert counted_checks.verified == 11  # the owner's password, checked as usual


def test_the_unfamiliar_lock_lasts_the_policy_and_at_least_30_minutes_by_default():
    user = member()
    fail(browser(ATTACKER_IP), user, 10)
    state = LockoutState.objects.get(user=user)
    assert state.unfamiliar_locked_until - state.unfamiliar_locked_at == timedelta(minutes=30)
    assert state.locked_until is None


def test_familiar_wrong_guesses_lock_out_every_source(counted_checks):
    """PCI DSS 8.3.4 against every source: a familiar one gets no more than the threshold."""
    user = member()
    client = owner_browser(user)
    counted_checks.reset()

    fail(client, user, 14)

    assert counted_checks.verified == 10
    [lock] = triggered("all")
    assert lock.details["failures"] == 10
    state = LockoutState.objects.get(user=user)
    assert state.locked_until - state.locked_at == timedelta(minutes=30)
    assert not signs_in(client, user)
    assert not signs_in(browser(ATTACKER_IP), user)
    assert not signs_in(browser(OWNER_NEIGHBOUR_IP), user)
    assert counted_checks.verified == 10


def test_familiar_and_unfamiliar_failures_are_counted_apart():
    user = member()
    client = owner_browser(user)
    attacker = browser(ATTACKER_IP)
    fail(attacker, user, 9)
    fail(client, user, 9)
    assert events(EventType.LOCKOUT_TRIGGERED) == []

    fail(attacker, user, 1)

    [lock] = events(EventType.LOCKOUT_TRIGGERED)
    assert (lock.details["scope"], lock.details["failures"]) == ("unfamiliar", 10)
    assert signs_in(client, user)


def test_the_owner_signing_in_does_not_reset_the_unfamiliar_count():
    user = member()
    client = owner_browser(user)
    attacker = browser(ATTACKER_IP)
    fail(attacker, user, 9)
    assert signs_in(client, user)

    fail(attacker, user, 1)

    assert len(triggered("unfamiliar")) == 1


def test_a_wrong_code_counts_in_the_class_its_password_step_was_decided_in(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    client = owner_browser(user, device=device)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    assert sign_in(client, user.email).status_code == 303
    client.defaults["REMOTE_ADDR"] = ATTACKER_IP  # the code step comes from elsewhere

    second_step(client, wrong)

    [failed] = events(EventType.LOGIN_FAILED, reason=Reason.MFA_FAILED)
    assert failed.details["source"] == Source.FAMILIAR


def test_wrong_codes_after_an_unfamiliar_password_step_lock_only_unfamiliar_sources(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    client = owner_browser(user, device=device)
    wrong = "000000" if code_for(device) != "000000" else "111111"
    attacker = browser(ATTACKER_IP)  # knows the password, not the code
    assert sign_in(attacker, user.email).status_code == 303
    statuses = [second_step(attacker, wrong).status_code for _ in range(10)]

    assert statuses == [400] * 9 + [403]
    assert len(triggered("unfamiliar")) == 1
    assert sign_in(client, user.email).status_code == 303
    assert second_step(client, code_for(device, steps_from_now=1)).status_code == 303


def test_a_pending_sign_in_signed_before_sources_were_carried_counts_as_unfamiliar(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = member()
    device = totp_device(user)
    client = owner_browser(user, device=device)
    assert sign_in(client, user.email).status_code == 303
    session = client.session
    marker = signing.loads(session[PENDING_SESSION_KEY], salt=PENDING_SALT)
    del marker["s"]
    session[PENDING_SESSION_KEY] = signing.dumps(marker, salt=PENDING_SALT)
    session.save()

    second_step(client, "000000" if code_for(device) != "000000" else "111111")

    [failed] = events(EventType.LOGIN_FAILED, reason=Reason.MFA_FAILED)
    assert failed.details["source"] == Source.UNFAMILIAR


# --- Release -----------------------------------------------------------------------------------


def _admin_of(user) -> Client:
    """A browser signed in as an administrator of the user's organization."""
    admin = member(user.membership.organization, Role.ADMINISTRATOR)
    client = browser(ELSEWHERE_IP)
    assert sign_in(client, admin.email).status_code == 303
    return client


def _unlock(admin_client: Client, user):
    return admin_client.post(reverse("accounts:member-unlock", args=[user.membership.pk]))


def test_an_administrator_unlock_releases_both_locks():
    user = member()
    client = owner_browser(user)
    admin_client = _admin_of(user)
    fail(browser(ATTACKER_IP), user, 10)
    fail(client, user, 10)
    assert {e.details["scope"] for e in events(EventType.LOCKOUT_TRIGGERED)} == {
        "all",
        "unfamiliar",
    }

    assert _unlock(admin_client, user).status_code == 303

    released = events(EventType.LOCKOUT_RELEASED)
    assert sorted(e.details["scope"] for e in released) == ["all", "unfamiliar"]
    assert {e.reason for e in released} == {Reason.ADMIN_UNLOCK}
    assert {e.target_user_id for e in released} == {user.pk}
    state = LockoutState.objects.get(user=user)
    assert (state.locked_until, state.unfamiliar_locked_until) == (None, None)
    assert signs_in(client, user)
    assert signs_in(browser(ATTACKER_IP), user)  # unlocked for every source


def test_relocking_after_an_unlock_does_not_lock_the_owner_out(counted_checks):
    user = member()
    client = owner_browser(user)
    admin_client = _admin_of(user)
    attacker = browser(ATTACKER_IP)
    fail(attacker, user, 10)
    counted_checks.reset()

    assert _unlock(admin_client, user).status_code == 303
    fail(attacker, user, 15)  # at once, as the attacker did

    assert len(triggered("unfamiliar")) == 2
    assert counted_checks.verified == 10  # the threshold again, not one more
    assert signs_in(client, user)
    assert signs_in(browser(OWNER_NEIGHBOUR_IP), user)


def test_an_expired_unfamiliar_lock_is_released_alone():
    user = member()
    client = owner_browser(user)
    fail(browser(ATTACKER_IP), user, 10)
    fail(client, user, 10)
    LockoutState.objects.filter(user=user).update(
        unfamiliar_locked_until=timezone.now() - timedelta(seconds=1)
    )

    assert lockouts_release_expired() == 1

    [released] = events(EventType.LOCKOUT_RELEASED)
    assert (released.reason, released.details["scope"]) == (Reason.EXPIRED, "unfamiliar")
    assert LockoutState.objects.get(user=user).locked_until is not None
    assert not signs_in(client, user)


# --- What administrators and the owner see ------------------------------------------------------


def _row(body: str, email: str) -> str:
    match = re.search(rf'<tr data-member="{re.escape(email)}">(.*?)</tr>', body, re.S)
    assert match, f"no row for {email}"
    return re.sub(r"\s+", " ", match.group(1))


def test_members_shows_both_counts_in_the_window():
    user = member()
    client = owner_browser(user)
    admin_client = _admin_of(user)
    fail(browser(ATTACKER_IP), user, 3)
    fail(client, user, 2)

    row = _row(admin_client.get(MEMBERS_URL).content.decode(), user.email)
    assert "familiar 2<br>unfamiliar 3" in row
    assert "Unlock" not in row

    assert signs_in(client, user)  # resets the familiar count only
    row = _row(admin_client.get(MEMBERS_URL).content.decode(), user.email)
    assert "familiar 0<br>unfamiliar 3" in row


def test_members_shows_both_locks_and_one_unlock():
    user = member()
    client = owner_browser(user)
    admin_client = _admin_of(user)
    fail(browser(ATTACKER_IP), user, 10)

    row = _row(admin_client.get(MEMBERS_URL).content.decode(), user.email)
    assert "Unfamiliar devices and networks locked out until" in row
    assert "Locked until" not in row
    assert row.count("Unlock") == 1

    fail(client, user, 10)
    row = _row(admin_client.get(MEMBERS_URL).content.decode(), user.email)
    assert "Locked until" in row
    assert "Unfamiliar devices and networks locked out until" in row
    assert "familiar 0<br>unfamiliar 0" in row  # each lock restarted its count


def test_the_counts_are_read_in_one_query_whatever_the_number_of_members():
    user = member()
    admin_client = _admin_of(user)
    admin_client.get(MEMBERS_URL)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(MEMBERS_URL)
    for _ in range(5):
        fail(browser(ATTACKER_IP), member(user.membership.organization), 2)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(MEMBERS_URL)
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER])
def test_only_administrators_see_the_counts_or_unlock(role):
    user = member()
    fail(browser(ATTACKER_IP), user, 10)
    colleague = member(user.membership.organization, role)
    client = owner_browser(colleague, ELSEWHERE_IP)
    sign_in(client, colleague.email)

    assert client.get(MEMBERS_URL).status_code == 403
    assert _unlock(client, user).status_code == 403
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is not None


def test_another_organizations_administrator_neither_sees_nor_unlocks():
    user = member()
    fail(browser(ATTACKER_IP), user, 10)
    outsider = member(role=Role.ADMINISTRATOR)
    client = owner_browser(outsider, ELSEWHERE_IP)
    sign_in(client, outsider.email)

    assert user.email not in client.get(MEMBERS_URL).content.decode()
    assert _unlock(client, user).status_code == 404
    assert LockoutState.objects.get(user=user).unfamiliar_locked_until is not None
    assert events(EventType.LOCKOUT_RELEASED) == []


def test_the_owner_is_told_that_unfamiliar_sign_ins_are_paused():
    user = member()
    colleague = member(user.membership.organization)
    client = owner_browser(user)
    fail(browser(ATTACKER_IP), user, 10)
    colleague_client = owner_browser(colleague, ELSEWHERE_IP)

    sign_in(client, user.email)
    assert "are paused until" in client.get(SECURITY_URL).content.decode()
    sign_in(colleague_client, colleague.email)
    assert "are paused until" not in colleague_client.get(SECURITY_URL).content.decode()


# --- Races (PostgreSQL: row locks) --------------------------------------------------------------


def _in_threads(attempts: list[Callable[[], int]], *, threads: int) -> list[int]:
    """Run the attempts from `threads` threads released together; their status codes."""
    shares = [attempts[n::threads] for n in range(threads)]
    done = all_at_once(*[lambda share=share: [attempt() for attempt in share] for share in shares])
    return [status for share in done for status in share]


def _attempt(ip: str, user, password: str) -> Callable[[], int]:
    return lambda: sign_in(browser(ip), user.email, password).status_code


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_from_strangers_racing_the_owner_is_checked_threshold_times(counted_checks):
    user = member()
    owner_browser(user)
    counted_checks.reset()
    attempts = [_attempt(ATTACKER_IP, user, "wrong")] * 100
    attempts += [_attempt(OWNER_NEIGHBOUR_IP, user, PASSWORD)] * 8
    attempts += [_attempt(OWNER_IP, user, "typo")] * 9

    statuses = _in_threads(attempts, threads=12)

    assert statuses.count(303) == 8  # the owner signed in every time
    assert len(checked("unfamiliar")) == 10
    assert len(checked("familiar")) == 9
    assert counted_checks.verified == 10 + 8 + 9
    [lock] = events(EventType.LOCKOUT_TRIGGERED)
    assert lock.details["scope"] == "unfamiliar"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_classes_racing_each_get_at_most_the_threshold(counted_checks, lockout_alone):
    user = member()
    owner_browser(user)
    counted_checks.reset()
    attempts = [_attempt(ATTACKER_IP, user, "wrong")] * 60
    attempts += [_attempt(OWNER_NEIGHBOUR_IP, user, "wrong")] * 60

    statuses = _in_threads(attempts, threads=12)

    assert statuses == [200] * 120
    familiar, unfamiliar = checked("familiar"), checked("unfamiliar")
    [every_source] = triggered("all")
    assert len(familiar) == 10
    assert len(unfamiliar) <= 10
    # The unfamiliar lock came only if ten unfamiliar guesses came before the lock of all.
    assert len(triggered("unfamiliar")) == (len(unfamiliar) == 10)
    assert counted_checks.verified == len(familiar) + len(unfamiliar)
    assert max(e.pk for e in familiar + unfamiliar) < every_source.pk
    assert len(events(EventType.LOGIN_FAILED)) == 120


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sign_in_that_committed_while_an_attempt_waited_makes_its_network_familiar():
    """The source is decided under the account's lock: as if the two had come one by one."""
    user = member()
    LockoutState.objects.create(user=user)
    statuses: list[int] = []

    def fail_once() -> None:
        try:
            statuses.extend(fail(browser(OWNER_NEIGHBOUR_IP), user, 1))
        finally:
            connections.close_all()

    waiting = threading.Thread(target=fail_once)
    # As a successful sign-in from the owner's network does: its session is written while it
    # holds the account's lockout row, and committed with it.
    with transaction.atomic():
        LockoutState.objects.select_for_update().get(user=user)
        waiting.start()
        wait_for_a_blocked_statement()
        UserSession.objects.create(
            user=user, session_key="k", session_hash="h", ip_address=OWNER_IP,
            network=network_of(OWNER_IP),
        )  # fmt: skip
    waiting.join(timeout=30)

    assert statuses == [200]
    assert last_source() == Source.FAMILIAR
