"""streams.formats: every event type in OCSF (validated against the OCSF schema), ECS, CEF and
our own JSON (the API's), with CEF's escaping and no secret in any of them."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from accounts.models import Role, Tier
from api.services import api_token_create
from audit.models import AuditEvent, Category, EventType, Outcome, Reason
from audit.services import event_record
from streams.formats import ECS, FORMATS, OCSF, OCSF_VERSION, render

from .factories import OrganizationFactory, member
from .test_api import poll_until

pytestmark = pytest.mark.django_db

SCHEMA = json.loads(
    (Path(__file__).parent / "ocsf" / f"ocsf-{OCSF_VERSION}-classes.schema.json").read_text()
)


def ocsf_errors(payload: dict[str, Any]) -> list[str]:
    """The schema's complaints about a payload of one of the classes we emit."""
    schema = {**SCHEMA["classes"][str(payload["class_uid"])], "$defs": SCHEMA["$defs"]}
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in Draft202012Validator(schema).iter_errors(payload)
    ]


def full_event(event_type: str, **fields) -> AuditEvent:
    """An event with every field filled in, as a sign-in from Berlin records them."""
    organization = fields.pop("organization", None) or OrganizationFactory.create()
    actor = member(organization, Role.ADMINISTRATOR, email="admin@acme.test")
    target = member(organization, email="alice@acme.test")
    values = {
        "occurred_at": datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "organization": organization,
        "event_type": event_type,
        "outcome": Outcome.SUCCESS,
        "actor": actor,
        "actor_label": actor.email,
        "target_user": target,
        "target_label": target.email,
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Macintosh) Chrome/120.0",
        "browser": "Chrome",
        "os": "Mac OS X",
        "device_type": "pc",
        "device_id": "dev123",
        "country": "DE",
        "city": "Berlin",
        "latitude": 52.52,
        "longitude": 13.405,
        "session_hash": "abcdef0123456789",
        "request_id": "req-42",
        "details": {"method": "password+totp", "severity": "high", "new": Role.SECURITY_ANALYST},
    }
    return AuditEvent.objects.create(**{**values, **fields})


# --- Every event type ----------------------------------------------------------------------------


def test_every_event_type_is_in_the_ocsf_and_ecs_tables():
    assert set(OCSF) == set(EventType.values)
    assert set(ECS) == set(EventType.values)


def test_the_formats_are_the_four_of_the_issue():
    assert set(FORMATS) == {"ocsf", "ecs", "cef", "json"}


@pytest.mark.parametrize("event_type", EventType.values)
def test_every_event_type_renders_in_every_format(event_type):
    event = full_event(event_type, outcome=Outcome.FAILURE, reason=Reason.INVALID_CREDENTIALS)
    ocsf = render(event, "ocsf")
    assert ocsf_errors(ocsf) == []
    mapping = OCSF[event_type]
    assert (ocsf["class_uid"], ocsf["activity_id"]) == (mapping.class_uid, mapping.activity_id)
    assert ocsf["type_uid"] == mapping.class_uid * 100 + mapping.activity_id
    assert ocsf["metadata"]["uid"] == str(event.pk)
    assert ocsf["status_detail"] == Reason.INVALID_CREDENTIALS

    ecs = render(event, "ecs")
    assert ecs["event"]["id"] == str(event.pk)
    assert ecs["event"]["action"] == event_type
    assert ecs["event"]["category"] == ECS[event_type][0]

    cef = render(event, "cef")
    assert isinstance(cef, str)
    assert cef.startswith("CEF:0|Activity Monitor|Activity Monitor|")
    assert cef_extension(cef)["externalId"] == str(event.pk)
    assert cef_header(cef)[4] == event_type

    assert render(event, "json")["id"] == event.pk


def test_the_classes_follow_the_issue():
    assert {OCSF[t].class_uid for t in ("login.succeeded", "login.failed", "logout")} == {3002}
    account_changes = [t for t in EventType.values if t.split(".")[0] in {"password", "lockout"}]
    account_changes += ["mfa.device_added", "mfa.device_removed", "mfa.reset_by_admin"]
    assert {OCSF[t].class_uid for t in account_changes} == {3001}
    administrative = [
        t for t in EventType.values if t.split(".")[0] in {"settings", "export", "retention"}
    ]
    assert {OCSF[t].class_uid for t in administrative} == {3004}
    assert OCSF[EventType.MEMBER_ROLE_CHANGED].class_uid == 3005


# --- OCSF ----------------------------------------------------------------------------------------


def test_a_failed_sign_in_in_ocsf():
    event = full_event(
        EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        reason=Reason.INVALID_CREDENTIALS,
        actor=None,
        actor_label="",
        details={"method": "password"},
    )
    ocsf = render(event, "ocsf")
    assert ocsf_errors(ocsf) == []
    assert ocsf["class_uid"] == 3002
    assert ocsf["category_uid"] == 3
    assert ocsf["activity_id"] == 1
    assert ocsf["type_uid"] == 300201
    assert ocsf["time"] == 1772368215123  # 2026-03-01T12:30:15.123Z in milliseconds
    assert ocsf["status_id"] == 2
    assert ocsf["status"] == "Failure"
    assert ocsf["status_detail"] == "invalid_credentials"
    assert ocsf["severity_id"] == 2
    assert ocsf["user"] == {
        "uid": str(event.target_user_id),
        "name": "alice@acme.test",
        "email_addr": "alice@acme.test",
    }
    assert ocsf["actor"]["app_name"] == "Activity Monitor"  # nobody signed in
    assert ocsf["is_mfa"] is False
    assert ocsf["src_endpoint"] == {
        "ip": "203.0.113.7",
        "uid": "dev123",
        "location": {"city": "Berlin", "country": "DE", "lat": 52.52, "long": 13.405},
    }
    assert ocsf["metadata"]["product"] == {
        "name": "Activity Monitor",
        "vendor_name": "Activity Monitor",
        "version": ocsf["metadata"]["product"]["version"],
    }
    assert ocsf["metadata"]["version"] == "1.6.0"
    assert ocsf["metadata"]["tenant_uid"] == str(event.organization_id)
    assert ocsf["http_request"] == {"user_agent": event.user_agent, "uid": "req-42"}


def test_an_event_of_nobody_from_nowhere_still_validates():
    event = AuditEvent.objects.create(
        event_type=EventType.LOGIN_THROTTLED,
        outcome=Outcome.FAILURE,
        reason=Reason.IP_RATE_LIMIT,
        details={"count": 50},
    )
    ocsf = render(event, "ocsf")
    assert ocsf_errors(ocsf) == []
    assert "src_endpoint" not in ocsf
    assert ocsf["severity_id"] == 3
    assert "tenant_uid" not in ocsf["metadata"]


def test_an_administrator_acting_on_a_member_is_actor_and_user():
    event = full_event(EventType.MFA_RESET_BY_ADMIN)
    ocsf = render(event, "ocsf")
    assert ocsf["class_uid"] == 3001
    assert ocsf["activity_id"] == 11
    assert ocsf["actor"]["user"]["name"] == "admin@acme.test"
    assert ocsf["user"]["name"] == "alice@acme.test"
    assert ocsf["actor"]["session"] == {"uid": "abcdef0123456789"}


def test_a_role_change_assigns_the_new_role_as_a_privilege():
    event = full_event(EventType.MEMBER_ROLE_CHANGED, details={"old": "member", "new": "analyst"})
    ocsf = render(event, "ocsf")
    assert ocsf_errors(ocsf) == []
    assert ocsf["type_uid"] == 300501
    assert ocsf["privileges"] == ["analyst"]


def test_an_alert_takes_its_own_severity():
    event = full_event(
        EventType.ALERT_RAISED,
        details={"alert_id": 9, "rule": "failed_sign_ins", "severity": "critical"},
    )
    ocsf = render(event, "ocsf")
    assert ocsf_errors(ocsf) == []
    assert ocsf["severity_id"] == 5
    assert ocsf["entity"] == {"name": "failed_sign_ins", "type": "Alert", "uid": "9"}
    assert cef_header(render(event, "cef"))[6] == "10"


def test_the_schema_refuses_what_ocsf_does_not_define():
    payload = render(full_event(EventType.LOGIN_SUCCEEDED), "ocsf")
    assert any("activity_id" in e for e in ocsf_errors({**payload, "activity_id": 42}))
    assert any("type_uid" in e for e in ocsf_errors({**payload, "type_uid": 300101}))
    assert ocsf_errors({**payload, "src_endpont": {"ip": "203.0.113.7"}})  # misspelt
    assert ocsf_errors({k: v for k, v in payload.items() if k != "user"})  # required
    assert ocsf_errors({**payload, "time": "2026-03-01"})
    with pytest.raises(ValidationError):
        Draft202012Validator({**SCHEMA["classes"]["3002"], "$defs": SCHEMA["$defs"]}).validate(
            {**payload, "metadata": {"uid": "1"}}
        )  # no product, no version


# --- ECS -----------------------------------------------------------------------------------------


# The event types ECS expects in each category we use (ECS categorization fields, "Expected event
# types for category ..."); anything else is a value ECS users' dashboards do not look for.
ECS_EXPECTED_TYPES = {
    "authentication": {"start", "end", "info"},
    "configuration": {"access", "change", "creation", "deletion", "info"},
    "database": {"access", "change", "info", "error"},
    "file": {"access", "change", "creation", "deletion", "info"},
    "iam": {"admin", "change", "creation", "deletion", "group", "info", "user"},
    "intrusion_detection": {"allowed", "denied", "info"},
    "session": {"start", "end", "info"},
}


@pytest.mark.parametrize("event_type", EventType.values)
def test_ecs_types_are_those_ecs_expects_in_the_category(event_type):
    categories, types = ECS[event_type]
    for category in categories:
        assert set(types) <= ECS_EXPECTED_TYPES[category], (category, types)


def test_a_sign_in_in_ecs():
    event = full_event(EventType.LOGIN_SUCCEEDED, target_user=None, target_label="")
    ecs = render(event, "ecs")
    assert ecs["@timestamp"] == "2026-03-01T12:30:15.123456+00:00"
    assert ecs["event"] == {
        "id": str(event.pk),
        "kind": "event",
        "category": ["authentication"],
        "type": ["start"],
        "action": "login.succeeded",
        "outcome": "success",
        "severity": 1,
        "provider": "activity-monitor",
        "dataset": "activity_monitor.audit",
        "module": "activity_monitor",
    }
    assert ecs["user"] == {
        "id": str(event.actor_id),
        "name": "admin@acme.test",
        "email": "admin@acme.test",
    }
    assert ecs["source"] == {
        "ip": "203.0.113.7",
        "geo": {
            "country_iso_code": "DE",
            "city_name": "Berlin",
            "location": {"lat": 52.52, "lon": 13.405},
        },
    }
    assert ecs["user_agent"] == {
        "original": event.user_agent,
        "name": "Chrome",
        "os": {"name": "Mac OS X"},
        "device": {"name": "pc"},
    }
    assert ecs["http"] == {"request": {"id": "req-42"}}
    assert ecs["organization"] == {"id": str(event.organization_id)}


def test_a_failure_in_ecs_says_why_and_whom_it_was_about():
    event = full_event(
        EventType.PASSWORD_RESET_FAILED, outcome=Outcome.FAILURE, reason=Reason.INVALID_TOKEN
    )
    ecs = render(event, "ecs")
    assert ecs["event"]["outcome"] == "failure"
    assert ecs["event"]["reason"] == "invalid_token"
    assert ecs["event"]["category"] == ["iam"]
    assert ecs["user"]["target"]["name"] == "alice@acme.test"
    assert ecs["activity_monitor"]["category"] == Category.PASSWORD


# --- CEF -----------------------------------------------------------------------------------------


def cef_header(line: str) -> list[str]:
    """The seven header fields of a CEF line, unescaped (a reader's view of it)."""
    fields: list[str] = []
    current, index = "", 0
    while len(fields) < 7:
        char = line[index]
        if char == "\\":
            current += line[index + 1]
            index += 2
            continue
        if char == "|":
            fields.append(current)
            current = ""
        else:
            current += char
        index += 1
    return fields


def cef_extension(line: str) -> dict[str, str]:
    """The extension's keys and values, unescaped, as CEF readers split them."""
    match = re.match(r"^(?:(?:\\.|[^|\\])*\|){7}(.*)$", line, re.DOTALL)
    assert match is not None, line
    text = match.group(1)
    # A key starts after a space and runs to an unescaped "=".
    parts = re.split(r"(?:^| )([A-Za-z0-9_]+)=", text)
    unescaped = {"n": "\n", "r": "\r"}
    values: dict[str, str] = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        values[key] = re.sub(r"\\(.)", lambda m: unescaped.get(m.group(1), m.group(1)), value)
    return values


def test_cef_escapes_pipes_backslashes_equals_and_newlines():
    hostile = "eve|x\\y=z\nline2\r"
    event = full_event(
        EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        reason="a=b|c",
        actor=None,
        actor_label=hostile,
        target_user=None,
        target_label="",
        details={"note": "k=v \\ | done\nnext"},
    )
    line = render(event, "cef")
    assert "\n" not in line and "\r" not in line  # one event, one line
    header = cef_header(line)
    assert header[:3] == ["CEF:0", "Activity Monitor", "Activity Monitor"]
    assert header[4] == "login.failed"
    assert "eve|x\\y=z line2" in header[5]  # the name: pipe and backslash kept, no line break
    ext = cef_extension(line)
    assert ext["suser"] == hostile
    assert ext["reason"] == "a=b|c"
    assert json.loads(ext["cs6"]) == {"note": "k=v \\ | done\nnext"}
    assert ext["cs6Label"] == "details"
    assert "suser=eve|x\\\\y\\=z\\nline2\\r" in line


def test_cef_round_trips_any_mix_of_the_special_characters():
    event = full_event(EventType.LOGIN_FAILED, actor=None, target_user=None, target_label="")
    chooser = random.Random(18)
    for _ in range(200):
        label = "".join(chooser.choice("|\\=\n\r a=b") for _ in range(chooser.randint(1, 12)))
        event.actor_label, event.reason = label, label[::-1]
        line = render(event, "cef")
        assert "\n" not in line and "\r" not in line
        ext = cef_extension(line)
        assert (ext["suser"], ext["reason"]) == (label, label[::-1]), line
        assert cef_header(line)[4] == "login.failed"


def test_cef_carries_the_sign_in_fields():
    event = full_event(EventType.LOGIN_SUCCEEDED, reason="")
    ext = cef_extension(render(event, "cef"))
    assert ext["rt"] == "1772368215123"
    assert ext["externalId"] == str(event.pk)
    assert ext["act"] == "login.succeeded"
    assert ext["outcome"] == "success"
    assert ext["src"] == "203.0.113.7"
    assert ext["suser"] == "admin@acme.test"
    assert ext["duser"] == "alice@acme.test"
    assert ext["requestClientApplication"] == event.user_agent
    assert (ext["cs2Label"], ext["cs2"]) == ("location", "Berlin, DE")
    assert "reason" not in ext


def test_cef_names_an_ipv6_source_in_its_own_field():
    ext = cef_extension(render(full_event(EventType.LOGOUT, ip_address="2001:db8::1"), "cef"))
    assert "src" not in ext
    assert (ext["c6a2"], ext["c6a2Label"]) == ("2001:db8::1", "Source IPv6 Address")


# --- Our own JSON: the API's ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the feed serves committed transactions only
def test_our_json_is_what_the_api_serves(client):
    organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    admin = member(organization, Role.ADMINISTRATOR)
    _, secret = api_token_create(organization=organization, user=admin, name="SIEM")
    event = full_event(EventType.LOGIN_SUCCEEDED, organization=organization)
    served: dict[int, dict[str, Any]] = {}
    for _ in range(4):  # a long writer elsewhere on the server may hold the feed back a while
        served = {row["id"]: row for row in poll_until(client, secret, [event.pk])}
        if event.pk in served:
            break
    assert served[event.pk] == render(event, "json")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="choose one of ocsf, ecs, cef, json"):
        render(full_event(EventType.LOGOUT), "xml")


# --- Secrets -------------------------------------------------------------------------------------

SECRETS = ["hunter2-secret", "sk_live_abc", "947261", "sessionkey-xyz"]


def test_no_format_carries_a_secret_even_from_a_row_written_around_the_service():
    # Written with the ORM, not audit.services: the row itself holds the secret-looking keys.
    event = full_event(
        EventType.PASSWORD_CHANGED,
        details={
            "password": SECRETS[0],
            "nested": {"api_key": SECRETS[1], "kept": "visible"},
            "otp": SECRETS[2],
            "session_key": SECRETS[3],
            "token_name": "SIEM",
        },
    )
    for fmt in FORMATS:
        text = json.dumps(render(event, fmt))
        for secret in SECRETS:
            assert secret not in text, (fmt, secret)
        assert "visible" in text and "SIEM" in text, fmt


def test_an_event_recorded_by_the_service_has_no_secret_in_any_format(org, admin):
    event = event_record(
        event_type=EventType.SETTINGS_CHANGED,
        actor=admin,
        organization=org,
        details={"setting": "webhook", "secret": SECRETS[0], "new": {"token": SECRETS[1]}},
    )
    for fmt in FORMATS:
        text = json.dumps(render(event, fmt))
        assert SECRETS[0] not in text and SECRETS[1] not in text, fmt
