"""The one table of human words for events (audit.descriptions) and the time tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from audit import descriptions
from audit.models import Category, EventType, Outcome
from audit.templatetags.when import relative

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("event_type", EventType.values)
def test_every_event_type_has_a_title_and_a_sentence(event_type):
    wording = descriptions.EVENT_WORDING[event_type]

    assert wording.title and wording.title != event_type
    text = descriptions.what_happened(event_type=event_type, actor_label="a@x.test")
    assert text.startswith("a@x.test") or text[0].isupper()
    assert "{" not in text


@pytest.mark.parametrize("reason", descriptions.reason_codes())
def test_every_reason_has_a_title_and_a_sentence(reason):
    wording = descriptions.REASON_WORDING[reason]

    assert wording.title and wording.title != reason
    text = descriptions.what_happened(event_type=EventType.LOGIN_FAILED, reason=reason)
    assert text[0].isupper() and "{" not in text


def test_every_outcome_and_category_has_a_title():
    assert set(descriptions.OUTCOME_TITLES) == set(Outcome.values)
    assert set(descriptions.CATEGORY_TITLES) == set(Category.values)


def test_the_table_knows_no_code_the_enums_do_not():
    assert set(descriptions.EVENT_WORDING) == set(EventType.values)
    assert set(descriptions.REASON_WORDING) == set(descriptions.reason_codes())


def test_a_failed_sign_in_reads_as_a_sentence_with_place_and_device():
    text = descriptions.sentence(
        event_type=EventType.LOGIN_FAILED,
        reason="invalid_credentials",
        actor_label="alice@acme.test",
        city="Berlin",
        country="DE",
        browser="Chrome",
        os="macOS",
    )

    assert text == "Wrong password for alice@acme.test from Berlin, Germany — Chrome on macOS"


def test_without_a_location_the_sentence_names_the_address():
    text = descriptions.sentence(
        event_type=EventType.LOGIN_SUCCEEDED, actor_label="bob@x.test", ip_address="203.0.113.7"
    )

    assert text == "bob@x.test signed in from 203.0.113.7"


def test_a_sentence_about_nobody_starts_with_a_capital():
    text = descriptions.what_happened(event_type=EventType.LOGIN_SUCCEEDED)

    assert text == "An account signed in"


def test_a_free_text_reason_is_kept_beside_the_sentence():
    text = descriptions.what_happened(
        event_type=EventType.LOCKOUT_TRIGGERED,
        reason="10 failed sign-ins in 15 minutes",
        target_label="alice@acme.test",
    )

    assert text == "The account alice@acme.test was locked (10 failed sign-ins in 15 minutes)"


def test_an_unknown_code_is_shown_as_it_is():
    assert descriptions.event_title("some.future_type") == "some.future_type"
    assert descriptions.reason_title("tor exit list") == "tor exit list"
    assert descriptions.what_happened(event_type="x.{y}", reason="r") == "x.{y} (r)"
    assert descriptions.country_name("ZZ") == "ZZ"
    assert descriptions.country_name("de") == "Germany"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=10), "just now"),
        (timedelta(minutes=3), "3 minutes ago"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(hours=5), "5 hours ago"),
        (timedelta(days=2), "2 days ago"),
        (timedelta(minutes=-20), "in 20 minutes"),
        (timedelta(days=30), "2026-11-07 12:00"),
    ],
)
def test_relative_times(delta, text):
    with timezone.override("UTC"):
        assert relative(NOW - delta, now=NOW) == text


def test_the_time_tag_gives_utc_in_the_attribute_and_the_local_time_beside():
    template = Template('{% load when %}{% when value %}|{% when value "full" %}')

    with timezone.override("Europe/Berlin"):
        html = template.render(Context({"value": datetime(2026, 3, 10, 23, 30, 15, tzinfo=UTC)}))

    short, full = html.split("|")
    assert 'datetime="2026-03-10T23:30:15+00:00"' in short
    assert 'title="2026-03-11 00:30:15 CET (Europe/Berlin)"' in short
    assert '<span class="sr-only"> (2026-03-11 00:30:15 CET)</span>' in short
    assert ">2026-03-11 00:30:15.000000 CET (Europe/Berlin) · 2026-03-11 00:30<" in full


def test_the_time_tag_shows_a_dash_for_no_time():
    assert Template("{% load when %}{% when None %}").render(Context()) == "—"
