"""seed_demo's recent attacks are evaluated like real events and raise each new rule's alert."""

from __future__ import annotations

import pytest

from alerts.models import Alert, RuleKind
from audit.models import AuditEvent, EventType, TorExitNode
from demo.scenarios import STUFFER_IP, TOR_EXIT
from demo.seed import seed_demo

from .alerts_support import committing

pytestmark = pytest.mark.django_db

NEW_RULES = [
    RuleKind.MFA_FATIGUE,
    RuleKind.SESSION_ANOMALY,
    RuleKind.ANONYMISING_NETWORK,
    RuleKind.CREDENTIAL_STUFFING,
]


def _acme_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(organization__slug="acme", kind=kind))


def test_the_demo_attacks_raise_an_alert_of_each_new_rule_in_acme():
    with committing():
        seed_demo(days=2)

    [fatigue] = _acme_alerts(RuleKind.MFA_FATIGUE)
    assert fatigue.subject_label == "compliance@acme.test"
    assert fatigue.details["failures"] == 6
    [anomaly] = _acme_alerts(RuleKind.SESSION_ANOMALY)
    assert anomaly.subject_label == "admin@acme.test"
    assert anomaly.details["new"]["country"] == "SG"
    assert anomaly.details["started"]["country"] not in ("", "SG")
    [tor] = _acme_alerts(RuleKind.ANONYMISING_NETWORK)
    assert tor.details["tor_exit"]["ip"] == TOR_EXIT
    assert TorExitNode.objects.filter(ip_address=TOR_EXIT).exists()
    [stuffing] = _acme_alerts(RuleKind.CREDENTIAL_STUFFING)
    assert stuffing.subject_ip == STUFFER_IP
    assert stuffing.details["attempts"] == 33
    assert stuffing.details["distinct_accounts"] == 18
    assert "payroll@acme.test" in stuffing.details["accounts"]  # an unknown name at acme.test
    # Only Acme is attacked; the others keep their plain history.
    assert not Alert.objects.exclude(organization__slug="acme").exists()


def test_the_credential_stuffing_run_is_many_accounts_few_attempts_each_from_one_address():
    with committing():
        seed_demo(days=2)
    stuffing = AuditEvent.objects.filter(
        organization__slug="acme", event_type=EventType.LOGIN_FAILED, ip_address=STUFFER_IP
    )
    per_account: dict[str, int] = {}
    for label in stuffing.values_list("actor_label", flat=True):
        per_account[label] = per_account.get(label, 0) + 1
    assert stuffing.count() >= 25
    assert len(per_account) >= 15
    assert max(per_account.values()) <= 2
    assert "alice@acme.test" not in per_account


def test_seeding_again_adds_no_attack():
    with committing():
        seed_demo(days=2)
    events, alerts = AuditEvent.objects.count(), Alert.objects.count()
    with committing():
        seed_demo(days=2)
    assert (AuditEvent.objects.count(), Alert.objects.count()) == (events, alerts)
    assert all(len(_acme_alerts(kind)) == 1 for kind in NEW_RULES)
