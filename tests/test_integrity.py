"""Tamper evidence: seals over the events, and verification naming every tampered event."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction

from alerts.models import Alert, RuleKind, Severity
from audit.models import AuditEvent, EventType
from integrity.checks import signing_key_check
from integrity.models import Seal, SealKind
from integrity.services import events_seal, integrity_verify, integrity_verify_record

from .factories import OrganizationFactory
from .helpers import all_at_once
from .integrity_support import as_attacker, events_made, signing_key_fixture  # noqa: F401
from .retention_support import archive_dir_fixture  # noqa: F401 (autouse fixture)

pytestmark = [
    pytest.mark.postgres(reason="seals follow PostgreSQL's commit order and hash in SQL"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def sealed():
    organization = OrganizationFactory.create(slug="acme")
    made = events_made(organization, 8)
    seals = events_seal(organization=organization, block_max=3)
    assert [s.event_count for s in seals] == [3, 3, 2]
    return organization, made


def _found(report) -> set[tuple[str, int | None]]:
    return {(p.kind, p.event_id) for p in report.problems}


def test_untouched_events_verify_intact(sealed):
    organization, made = sealed
    report = integrity_verify(organization=organization)
    assert report.intact, report.problems
    assert (report.blocks, report.events) == (3, 8)


def test_sealing_twice_seals_nothing_new_and_new_events_go_in_the_next_block(sealed):
    organization, _ = sealed
    assert events_seal(organization=organization) == []
    events_made(organization, 2)
    [seal] = events_seal(organization=organization)
    assert (seal.sequence, seal.event_count) == (4, 2)
    assert integrity_verify(organization=organization).intact


def test_an_edited_event_is_named(sealed):
    organization, made = sealed
    as_attacker(
        ("UPDATE audit_auditevent SET actor_label = 'someone-else' WHERE id = %s", [made[4].pk])
    )
    report = integrity_verify(organization=organization)
    assert _found(report) == {("changed", made[4].pk)}


def test_an_edited_detail_and_time_are_named(sealed):
    organization, made = sealed
    as_attacker(
        (
            'UPDATE audit_auditevent SET details = \'{"n": 0, "note": "cafe"}\' WHERE id = %s',
            [made[0].pk],
        ),
        (
            "UPDATE audit_auditevent SET occurred_at = occurred_at + interval '1 microsecond' "
            "WHERE id = %s",
            [made[7].pk],
        ),
    )
    assert _found(integrity_verify(organization=organization)) == {
        ("changed", made[0].pk),
        ("changed", made[7].pk),
    }


def test_a_deleted_event_is_named(sealed):
    organization, made = sealed
    as_attacker(("DELETE FROM audit_auditevent WHERE id = %s", [made[2].pk]))
    assert _found(integrity_verify(organization=organization)) == {("deleted", made[2].pk)}


def test_an_event_inserted_into_a_sealed_range_is_named(sealed):
    organization, made = sealed
    as_attacker(
        (
            "INSERT INTO audit_auditevent (occurred_at, organization_id, event_type, outcome, "
            "reason, actor_label, target_label, device_id, country, city, session_hash, "
            "request_id, details, txid) SELECT occurred_at, organization_id, event_type, outcome, "
            "reason, 'forged', target_label, device_id, country, city, session_hash, request_id, "
            "details, txid FROM audit_auditevent WHERE id = %s",
            [made[1].pk],
        )
    )
    forged = AuditEvent.objects.get(actor_label="forged")
    assert _found(integrity_verify(organization=organization)) == {("inserted", forged.pk)}


def test_reordered_events_are_named(sealed):
    organization, made = sealed
    first, second = made[3], made[4]
    as_attacker(
        (
            "UPDATE audit_auditevent SET txid = CASE id WHEN %s THEN %s ELSE %s END "
            "WHERE id IN (%s, %s)",
            [first.pk, second.txid, first.txid, first.pk, second.pk],
        )
    )
    assert _found(integrity_verify(organization=organization)) == {
        ("reordered", first.pk),
        ("reordered", second.pk),
    }


def test_an_event_moved_to_another_organization_is_named(sealed):
    organization, made = sealed
    other = OrganizationFactory.create()
    as_attacker(
        ("UPDATE audit_auditevent SET organization_id = %s WHERE id = %s", [other.pk, made[5].pk])
    )
    assert _found(integrity_verify(organization=organization)) == {("reordered", made[5].pk)}


def test_truncating_the_newest_events_is_named(sealed):
    organization, made = sealed
    newest = [made[6].pk, made[7].pk]
    as_attacker(("DELETE FROM audit_auditevent WHERE id = ANY(%s)", [newest]))
    assert _found(integrity_verify(organization=organization)) == {
        ("truncated", newest[0]),
        ("truncated", newest[1]),
    }


def test_truncating_events_and_their_seals_is_caught_by_the_copies_in_storage(sealed):
    organization, made = sealed
    as_attacker(
        ("DELETE FROM audit_auditevent WHERE id = ANY(%s)", [[made[6].pk, made[7].pk]]),
        (
            "DELETE FROM integrity_seal WHERE organization_id = %s AND sequence = 3",
            [organization.pk],
        ),
    )
    report = integrity_verify(organization=organization)
    assert ("chain", None) in _found(report)
    assert "seal 3 is in the archive storage but not in the database" in report.problems[-1].message


def test_a_rewritten_seal_is_named(sealed):
    organization, made = sealed
    # The attacker edits an event and re-derives its entry, but cannot sign.
    as_attacker(
        (
            "UPDATE integrity_seal SET header = replace(header, '\"count\":3', '\"count\":4') "
            "WHERE organization_id = %s AND sequence = 2",
            [organization.pk],
        )
    )
    report = integrity_verify(organization=organization)
    assert ("seal", None) in _found(report)
    assert "signature" in str([p.message for p in report.problems])


def test_a_seal_file_missing_from_storage_is_a_failure(sealed, archive_dir):
    organization, _ = sealed
    seal = Seal.objects.get(organization=organization, sequence=2)
    (Path(archive_dir) / seal.storage_name).unlink()
    report = integrity_verify(organization=organization)
    assert not report.intact
    assert [(p.kind, p.sequence) for p in report.problems] == [("storage", 2)]
    assert "missing from the archive storage" in report.problems[0].message


def test_without_a_key_verification_cannot_verify_and_never_says_intact(sealed, settings):
    organization, _ = sealed
    settings.INTEGRITY_SIGNING_KEY = ""
    report = integrity_verify(organization=organization)
    assert not report.intact
    assert "INTEGRITY_SIGNING_KEY is not set" in report.cannot_verify
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("verify_integrity", "--organization", "acme", stdout=out)
    assert raised.value.returncode == 2
    assert "cannot verify" in out.getvalue()
    assert "intact" not in out.getvalue()
    with pytest.raises(CommandError, match="INTEGRITY_SIGNING_KEY"):
        call_command("seal_events", stdout=io.StringIO())


def test_another_key_cannot_verify(sealed, settings):
    from integrity.keys import new_key

    organization, _ = sealed
    settings.INTEGRITY_SIGNING_KEY = new_key()
    report = integrity_verify(organization=organization)
    assert not report.intact
    assert "signed with key" in report.cannot_verify


@pytest.mark.parametrize(
    "value",
    ["not base64 at all!", "c2hvcnQ=", "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"],
)
def test_check_names_the_setting_of_a_malformed_key(settings, value):
    settings.INTEGRITY_SIGNING_KEY = value
    [message] = signing_key_check()
    assert isinstance(message, Error)
    assert "INTEGRITY_SIGNING_KEY" in message.msg
    assert value not in message.msg  # a secret is never repeated


def test_check_warns_of_a_missing_key(settings):
    settings.INTEGRITY_SIGNING_KEY = ""
    [message] = signing_key_check()
    assert isinstance(message, Warning)
    assert "INTEGRITY_SIGNING_KEY" in message.msg


def test_check_accepts_a_key(signing_key):
    assert signing_key_check() == []


def test_the_command_exits_non_zero_on_tampering_and_records_a_critical_alert(sealed):
    organization, made = sealed
    as_attacker(("DELETE FROM audit_auditevent WHERE id = %s", [made[1].pk]))
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("verify_integrity", stdout=out)
    assert raised.value.returncode == 1
    assert f"event {made[1].pk} was deleted" in out.getvalue()
    [failed] = AuditEvent.objects.filter(event_type=EventType.INTEGRITY_FAILED)
    assert failed.details["problems"] == 1
    assert failed.details["found"][0]["event_id"] == made[1].pk
    [alert] = Alert.objects.filter(organization=organization, kind=RuleKind.INTEGRITY_FAILURE)
    assert alert.severity == Severity.CRITICAL


def test_an_intact_log_records_integrity_verified_and_the_command_exits_zero(sealed):
    organization, _ = sealed
    out = io.StringIO()
    call_command("verify_integrity", "--organization", "acme", stdout=out)
    assert "acme: intact: 3 seals, 8 events" in out.getvalue()
    assert AuditEvent.objects.filter(
        organization=organization, event_type=EventType.INTEGRITY_VERIFIED
    ).exists()
    # The verification event is sealed next, and verification still passes.
    events_seal(organization=organization)
    assert integrity_verify_record(organization=organization).intact


def test_an_unknown_organization_is_refused_by_name():
    with pytest.raises(CommandError, match="No organization has the slug 'nope'"):
        call_command("verify_integrity", "--organization", "nope")


def test_the_app_role_cannot_rewrite_or_delete_seals(sealed):
    organization, _ = sealed
    with pytest.raises(DatabaseError), transaction.atomic():
        Seal.objects.filter(organization=organization).update(header="{}")
    with pytest.raises(DatabaseError), transaction.atomic():
        Seal.objects.filter(organization=organization).delete()
    assert Seal.objects.filter(organization=organization).count() == 3


def test_two_sealers_at_once_never_seal_one_range_twice():
    organization = OrganizationFactory.create()
    made = events_made(organization, 30)
    results = all_at_once(
        lambda: events_seal(organization=organization, block_max=4),
        lambda: events_seal(organization=organization, block_max=4),
    )
    seals = list(Seal.objects.filter(organization=organization).order_by("sequence"))
    assert [s.sequence for s in seals] == list(range(1, len(seals) + 1))
    assert sum(s.event_count for s in seals) == len(made)
    assert sum(len(r) for r in results) == len(seals)
    assert integrity_verify(organization=organization).intact


def test_each_organization_has_its_own_chain(sealed):
    organization, _ = sealed
    other = OrganizationFactory.create()
    events_made(other, 2)
    [seal] = events_seal(organization=other)
    assert (seal.sequence, seal.kind) == (1, SealKind.EVENTS)
    as_attacker(("DELETE FROM audit_auditevent WHERE organization_id = %s", [other.pk]))
    assert integrity_verify(organization=organization).intact
    assert not integrity_verify(organization=other).intact
