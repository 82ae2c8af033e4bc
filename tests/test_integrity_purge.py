"""A retention purge records what it removes in a seal, so verification still passes after it
(both paths: whole months dropped, rows deleted in batches)."""

from __future__ import annotations

import json

import pytest

from integrity.models import Seal, SealKind
from integrity.services import events_seal, integrity_verify
from retention.models import RetentionSettings, StoredFile
from retention.purge import events_purge_expired_all

from .integrity_support import as_attacker, horizon_passes, signing_key_fixture  # noqa: F401
from .retention_support import archive_dir_fixture  # noqa: F401 (autouse fixture)
from .test_partitions import _partitions
from .test_retention_partitions import History

pytestmark = [
    pytest.mark.postgres(reason="seals follow PostgreSQL's commit order and hash in SQL"),
    pytest.mark.django_db(transaction=True),
]


def _sealed_history(settings) -> History:
    history = History(settings)
    from audit.models import AuditEvent

    horizon_passes(max(txid or 0 for txid in AuditEvent.objects.values_list("txid", flat=True)))
    for organization in (history.small, history.medium, history.enterprise):
        events_seal(organization=organization, block_max=4)
        assert integrity_verify(organization=organization).intact
    return history


@pytest.mark.parametrize("by_partition", [True, False], ids=["drop", "delete"])
def test_verification_passes_after_a_purge(settings, archive_dir, by_partition):
    settings.RETENTION_PURGE_BY_PARTITION = by_partition
    history = _sealed_history(settings)
    RetentionSettings.objects.update_or_create(
        organization=history.small, defaults={"archive_before_purge": True}
    )
    months_before = set(_partitions())

    events_purge_expired_all()

    assert history.remaining() == history.kept
    dropped = months_before - set(_partitions())
    assert bool(dropped) == by_partition
    for organization in (history.small, history.medium, history.enterprise):
        report = integrity_verify(organization=organization)
        assert report.intact, (organization.name, report.problems)
        assert report.purged == history.expired.get(organization.pk, 0)
    [purge_seal] = Seal.objects.filter(organization=history.small, kind=SealKind.PURGE)
    recorded = json.loads(purge_seal.header)["purge"]
    assert recorded["blocks"]  # the sealed blocks it reached into
    assert recorded["max_id"] > 0
    # The archive's manifest names the chain's head, the purge seal written just before it.
    archive = StoredFile.objects.get(organization=history.small)
    manifest = json.loads((archive_dir / archive.manifest_name).read_text())
    assert manifest["integrity_seal"]["sequence"] == purge_seal.sequence
    assert manifest["integrity_seal"]["digest"] == purge_seal.digest


def test_a_purge_does_not_excuse_deleting_a_kept_event(settings):
    history = _sealed_history(settings)
    kept = sorted(history.kept & set(history.small.pk and _ids_of(history.small)))
    events_purge_expired_all()
    as_attacker(("DELETE FROM audit_auditevent WHERE id = %s", [kept[0]]))
    report = integrity_verify(organization=history.small)
    assert {(p.kind, p.event_id) for p in report.problems} in (
        {("deleted", kept[0])},
        {("truncated", kept[0])},
    )


def _ids_of(organization) -> set[int]:
    from audit.models import AuditEvent

    return set(AuditEvent.objects.filter(organization=organization).values_list("pk", flat=True))
