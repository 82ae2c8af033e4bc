"""/metrics: Prometheus' text for the platform operator or the METRICS_TOKEN, nobody else."""

from __future__ import annotations

import socket

import pytest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Role
from activity_monitor.celery import app
from alerts import pending
from alerts.models import SweepState
from audit.models import AuditEvent, EventType
from exports.models import Export, ExportStatus
from operations import metrics as registry

from .factories import OrganizationFactory, UserFactory, member
from .helpers import sign_in

pytestmark = pytest.mark.django_db

URL = "/metrics"
TOKEN = "metrics-token-for-tests-0123456789"


def samples(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels, parsed by the client library's parser."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def operator_client(client):
    operator = UserFactory.create(is_staff=True)
    sign_in(client, operator.email)
    return client


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


# --- Who may read it -----------------------------------------------------------------------------


def test_anonymous_visitors_are_asked_for_the_token(client, token):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"activity_monitor" not in response.content


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ADMINISTRATOR, Role.SECURITY_ANALYST])
def test_organization_members_of_any_role_are_refused(client, token, role):
    user = member(OrganizationFactory.create(), role)
    sign_in(client, user.email)
    response = client.get(URL)
    assert response.status_code == 403
    assert b"platform operator" in response.content


def test_the_platform_operator_reads_it_signed_in(operator_client):
    names = {name for name, _ in samples(operator_client.get(URL))}
    assert "activity_monitor_export_jobs" in names


def test_a_scraper_with_the_token_reads_it(client, token):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ("activity_monitor_collector_up", (("collector", "exports"),)) in samples(response)


def test_a_wrong_token_is_refused_even_for_a_signed_in_member(client, token):
    user = member(OrganizationFactory.create(), Role.ADMINISTRATOR)
    sign_in(client, user.email)
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert response.status_code == 401


def test_without_a_configured_token_no_token_opens_it(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer anything").status_code == 401


def test_only_get_is_answered(client, token):
    response = client.post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- What it says --------------------------------------------------------------------------------


def test_export_jobs_are_counted_by_state(client, token):
    first, second = OrganizationFactory.create(), OrganizationFactory.create()
    for organization, status in [
        (first, ExportStatus.RUNNING),
        (second, ExportStatus.RUNNING),
        (first, ExportStatus.PENDING),
        (second, ExportStatus.FAILED),
    ]:
        Export.objects.create(organization=organization, status=status)
    scraped = samples(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in scraped.items()
        if name == "activity_monitor_export_jobs"
    }
    assert by_state == {"pending": 1, "running": 2, "done": 0, "failed": 1, "expired": 0}


@pytest.fixture
def broker_in_use():
    """Tasks go to the broker's Redis (REDIS_URL), as in production, so the pending lists are
    used; the suite otherwise runs them eagerly."""
    app.conf.task_always_eager = False
    assert pending.enabled(), "these tests need REDIS_URL"
    yield


def test_the_alert_evaluation_backlog_counts_every_organization_s_pending_ids(
    client, token, broker_in_use
):
    first, second = OrganizationFactory.create(), OrganizationFactory.create()
    try:
        pending.add(first.pk, [11, 12, 13])
        pending.add(second.pk, [14])
        pending.take(first.pk, 1)  # a worker took one
        scraped = samples(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    finally:
        pending.forget(first.pk)
        pending.forget(second.pk)
    assert scraped["activity_monitor_alert_evaluations_pending", ()] == 3
    assert scraped["activity_monitor_collector_up", (("collector", "alerts"),)] == 1


def test_the_sweep_lag_is_the_events_after_its_mark(client, token):
    organization = OrganizationFactory.create()
    events = [
        AuditEvent.objects.create(organization=organization, event_type=EventType.LOGIN_FAILED)
        for _ in range(5)
    ]
    SweepState.objects.update_or_create(pk=1, defaults={"low_water_id": events[1].pk})
    scraped = samples(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert scraped["activity_monitor_alert_sweep_events_behind", ()] == 3


def test_a_collector_that_fails_is_reported_and_the_others_still_served(
    client, token, broker_in_use
):
    # The broker's Redis gone: alerts cannot count its lists, exports still answer.
    previous = app.conf.broker_url
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        app.conf.broker_url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        try:
            scraped = samples(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
        finally:
            app.conf.broker_url = previous
    assert scraped["activity_monitor_collector_up", (("collector", "alerts"),)] == 0
    assert scraped["activity_monitor_collector_up", (("collector", "exports"),)] == 1
    assert ("activity_monitor_alert_evaluations_pending", ()) not in scraped
    assert ("activity_monitor_export_jobs", (("state", "done"),)) in scraped


def test_another_app_adds_its_metrics_through_the_registry(client, token, monkeypatch):
    # The streams app's deliveries, as it will register them in its AppConfig.ready().
    def deliveries():
        family = CounterMetricFamily(
            "activity_monitor_stream_deliveries", "Events delivered.", labels=["destination"]
        )
        family.add_metric(["7"], 42)
        return [family]

    monkeypatch.setitem(registry._COLLECTORS, "streams", deliveries)
    scraped = samples(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert scraped["activity_monitor_stream_deliveries_total", (("destination", "7"),)] == 42
    assert scraped["activity_monitor_collector_up", (("collector", "streams"),)] == 1
