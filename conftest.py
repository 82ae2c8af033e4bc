"""Shared fixtures; the PostgreSQL-only policy, the test database's roles and its teardown."""

from __future__ import annotations

import os
import shutil

import pytest
import pytest_django
from django.conf import settings
from django.db import connection, connections

from tests.db_support import (
    events_delete_all,
    flush_as_owner,
    has_owner_role,
    owner_connect,
    retention_policy_follow_settings,
)

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run there
# unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_configure(config: pytest.Config) -> None:
    """The suite speaks plain http (test client, live server): it opts out of the https redirect.

    Production's default (SECURE_SSL_REDIRECT on unless DEBUG) is kept everywhere else; this is
    the suite's one explicit opt-out, as Django's own test setup swaps the email backend. Servers
    and workers a test starts inherit it through the environment. Tests of the redirect switch
    it back on for themselves.
    """
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    settings.SECURE_SSL_REDIRECT = False
    from django.test.signals import setting_changed

    setting_changed.connect(retention_policy_follow_settings, dispatch_uid="retention-policy")


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _skip_reason(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("postgres")
    if marker is not None and not _is_postgres():
        why = marker.kwargs.get("reason", "row locks and real concurrency")
        return f"needs PostgreSQL (set DATABASE_URL=postgres://...): {why}"
    if item.get_closest_marker("db_roles") is not None and not (
        _is_postgres() and has_owner_role()
    ):
        return "needs PostgreSQL with the app's role and the owner (README, 'Database roles')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = _skip_reason(item)
        if reason is None:
            continue
        if settings.REQUIRE_POSTGRES:
            item.add_marker(pytest.mark.xfail(reason=reason, run=False, strict=True))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under REQUIRE_POSTGRES (CI), a skipped test fails the run: nothing may pass by skipping."""
    if not settings.REQUIRE_POSTGRES:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    assert isinstance(reporter, pytest.TerminalReporter)
    skipped = len(reporter.stats.get("skipped", [])) + len(reporter.stats.get("xfailed", []))
    if not _is_postgres():
        reporter.write_line(
            "REQUIRE_POSTGRES is set but the tests ran on " + connection.vendor, red=True
        )
        session.exitstatus = 1
    elif skipped:
        reporter.write_line(f"REQUIRE_POSTGRES: {skipped} test(s) were skipped; failing.", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: pytest_django.Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,  # pytest-xdist: each worker's database has its own name
):
    """Create (and at the end destroy) the test database for every configured connection.

    pytest-django's own fixture sets up only the connections tests name, never "owner". With
    the two roles the app's connections are test mirrors of the owner's (settings.DATABASES):
    the database is created and migrated as the owner, which grants the app's role
    (audit.roles), and the tests then run as the app's role.
    """
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=verbosity, interactive=False, keepdb=keepdb, serialized_aliases=set()
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            # The mirrors' connections too: a database in use cannot be dropped.
            connections.close_all()
            teardown_databases(config, verbosity=verbosity)


@pytest.fixture
def analyze():
    """ANALYZE a table as its owner (only an owner may; with two roles, committed rows only)."""

    def run(table: str) -> None:
        sql = f"ANALYZE {connection.ops.quote_name(table)}"
        if has_owner_role():
            with owner_connect(autocommit=True) as owner:
                owner.execute(sql)
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql)

    return run


@pytest.fixture
def owner_connection():
    """The test database as the tables' owner, in autocommit (tests marked db_roles)."""
    with owner_connect(autocommit=True) as owner:
        yield owner


@pytest.fixture(autouse=True)
def _user_agent_ids_forgotten():
    """Each test starts without the user agents' ids an earlier test's database held (a test
    transaction that ran its on-commit callbacks cached ids it then rolled back)."""
    from audit.models import agent_ids_forget

    agent_ids_forget()


@pytest.fixture(autouse=True)
def _empty_database_after_transactional_test(request: pytest.FixtureRequest):
    """Transactional tests end with a flush, which the append-only guard would refuse.

    With one role (SQLite, or PostgreSQL as the owner) the events are deleted through the
    guard's gate before Django's flush. With two roles the app's connections are test mirrors,
    which Django does not flush, and the whole database is emptied here as the owner.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        (marker and marker.kwargs.get("transaction"))
        or "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    yield
    if has_owner_role():
        flush_as_owner()
    else:
        events_delete_all()


@pytest.fixture(autouse=True)
def _audit_alias_in_the_test_transaction(request: pytest.FixtureRequest):
    """In a test wrapped in one transaction, the "audit" alias is the default connection.

    Such a test's transaction stands in for the database: nothing commits past it, and a second
    connection could not see the rows the test made. So a write that would commit on its own
    (audit.services.durable_alias, taken whenever a transaction is open) joins the test's
    transaction, as every other write does. Tests of that durability run with
    django_db(transaction=True) and the real second connection (tests/test_durable_failures.py).
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        (marker and marker.kwargs.get("transaction"))
        or "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
    )
    if transactional or (marker is None and "db" not in request.fixturenames):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    separate = connections["audit"]
    connections["audit"] = connections["default"]
    try:
        yield
    finally:
        connections["audit"] = separate


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (which cannot download its own here)."""
    if shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context on the live server; the page's default timeout is 10 s."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    yield new_page
    context.close()


# Test networks (documentation ranges) and where the test GeoIP database puts them.
GEO_PLACES = {
    "203.0.113.0/24": ("DE", "Germany", "Berlin", 52.52, 13.405),
    "198.51.100.0/24": ("US", "United States", "New York", 40.7128, -74.006),
    "192.0.2.0/24": ("JP", "Japan", "Tokyo", 35.6762, 139.6503),
    "2001:db8::/32": ("GB", "United Kingdom", "London", 51.5074, -0.1278),
}


def build_geoip_city_db(path: str, places: dict[str, tuple[str, str, str, float, float]]) -> str:
    """Write a small GeoIP2-City database that geoip2 reads like MaxMind's own."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    for network, (iso, country, city, lat, lon) in places.items():
        writer.insert_network(
            IPSet([network]),
            {
                "country": {"iso_code": iso, "names": {"en": country}},
                "city": {"names": {"en": city}},
                "location": {"latitude": lat, "longitude": lon},
            },
        )
    writer.to_db_file(path)
    return path


@pytest.fixture
def geoip_db(tmp_path, settings):
    """Point GEOIP_CITY_DB at a freshly built test database (see GEO_PLACES)."""
    from audit.geo import reset_readers

    settings.GEOIP_CITY_DB = build_geoip_city_db(str(tmp_path / "city.mmdb"), GEO_PLACES)
    reset_readers()
    yield settings.GEOIP_CITY_DB
    reset_readers()


# Test networks and the autonomous systems the test ASN database puts them in: New York's is a
# cloud provider on the built-in hosting list, Berlin's a residential carrier.
ASN_NETWORKS = {
    "198.51.100.0/24": (16509, "AMAZON-02"),
    "203.0.113.0/24": (3320, "Deutsche Telekom AG"),
}


def build_geoip_asn_db(path: str, networks: dict[str, tuple[int, str]]) -> str:
    """Write a small GeoLite2-ASN database that geoip2 reads like MaxMind's own."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for network, (number, organization) in networks.items():
        writer.insert_network(
            IPSet([network]),
            {"autonomous_system_number": number, "autonomous_system_organization": organization},
        )
    writer.to_db_file(path)
    return path


@pytest.fixture
def asn_db(tmp_path, settings):
    """Point GEOIP_ASN_DB at a freshly built test database (see ASN_NETWORKS)."""
    from audit.geo import reset_readers

    settings.GEOIP_ASN_DB = build_geoip_asn_db(str(tmp_path / "asn.mmdb"), ASN_NETWORKS)
    reset_readers()
    yield settings.GEOIP_ASN_DB
    reset_readers()


@pytest.fixture(autouse=True)
def _celery_tasks_run_eagerly():
    """Queued tasks run in the test's own thread, also when REDIS_URL is set (CI).

    A test that starts a real worker switches this off for itself.
    """
    from activity_monitor.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
