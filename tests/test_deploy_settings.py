"""Production settings are secure by default and pass `check --deploy` (issue 12, finding 9)."""

from __future__ import annotations

import pytest

from .settings_support import production_env, run_manage, settings_under

ONE_YEAR = 60 * 60 * 24 * 365


def test_production_settings_pass_check_deploy_without_a_warning():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr + result.stdout


def test_production_is_https_only_by_default():
    production = settings_under({})

    assert production["DEBUG"] is False
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] == ONE_YEAR
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is True
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    # No proxy header is trusted until the operator names one.
    assert production["SECURE_PROXY_SSL_HEADER"] is None


def test_development_opts_out_of_https_by_setting_debug():
    development = settings_under({"DEBUG": "1"})

    assert development["SECURE_SSL_REDIRECT"] is False
    assert development["SECURE_HSTS_SECONDS"] == 0
    assert development["SESSION_COOKIE_SECURE"] is False
    assert development["CSRF_COOKIE_SECURE"] is False


def test_each_switch_is_an_operator_choice():
    chosen = settings_under(
        {
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "300",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "0",
            "SECURE_HSTS_PRELOAD": "0",
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        }
    )

    assert chosen["SECURE_SSL_REDIRECT"] is False
    assert chosen["SESSION_COOKIE_SECURE"] is False
    assert chosen["SECURE_HSTS_SECONDS"] == 300
    assert chosen["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert chosen["SECURE_HSTS_PRELOAD"] is False
    assert chosen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_proxy_header_may_be_named_as_django_spells_it():
    named = settings_under({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"})

    assert named["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


# --- What a browser gets (the suite's own settings are production's, minus the redirect) ----------


@pytest.fixture
def https_only(settings):
    """Production's redirect back on (the suite opts out of it in conftest.py)."""
    settings.SECURE_SSL_REDIRECT = True
    return settings


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(client, https_only):
    response = client.get("/sign-in/?next=/profile/")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/sign-in/?next=/profile/"


@pytest.mark.django_db
def test_health_answers_load_balancers_over_plain_http(client, https_only):
    assert client.get("/health/").status_code == 200


@pytest.mark.django_db
def test_a_forwarded_proto_header_is_ignored_unless_the_operator_named_it(client, https_only):
    response = client.get("/sign-in/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 301


@pytest.mark.django_db
def test_https_behind_the_named_proxy_gets_hsts_and_secure_cookies(client, https_only):
    https_only.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = client.get("/sign-in/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == (
        f"max-age={ONE_YEAR}; includeSubDomains; preload"
    )
    assert response.cookies["csrftoken"]["secure"]
    assert response.cookies["am_device"]["secure"]
