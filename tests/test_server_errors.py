"""The server error page: a database out of reach is a plain 503, anything else Django's 500."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from activity_monitor.errors import server_error


def _handled(rf, error: Exception):
    """What handler500 answers while Django handles `error` (it calls it in the except block)."""
    try:
        raise error
    except Exception:
        return server_error(rf.get("/settings/security/audit-log/"))


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection timeout expired"),
        InterfaceError("connection already closed"),
    ],
)
def test_a_database_out_of_reach_is_a_plain_503(rf, error) -> None:
    # No database fixture: pytest-django would refuse any query the page made.
    response = _handled(rf, error)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"cannot reach its database" in response.content


def test_any_other_error_stays_a_500(rf) -> None:
    response = _handled(rf, ValueError("a bug"))
    assert response.status_code == 500
    assert b"cannot reach its database" not in response.content
