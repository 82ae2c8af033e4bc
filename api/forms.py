"""The API's query parameters: the Audit Log's filters plus the page size."""

from __future__ import annotations

from audit.forms import EventFilterForm, WholeNumberField

from .feed import DEFAULT_LIMIT, MAX_LIMIT

LIMIT_MESSAGE = f"limit must be a whole number from 1 to {MAX_LIMIT}."


class EventFeedForm(EventFilterForm):
    """GET /api/v1/events: every filter of the Audit Log, its feed cursor, and `limit`."""

    limit = WholeNumberField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        error_messages={
            "invalid": LIMIT_MESSAGE,
            "min_value": LIMIT_MESSAGE,
            "max_value": LIMIT_MESSAGE,
        },
    )

    def clean_limit(self) -> int:
        limit = self.cleaned_data["limit"]
        return DEFAULT_LIMIT if limit is None else limit
