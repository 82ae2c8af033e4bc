"""The search language (audit.query): each qualifier, negation, ranges, quotes and every error."""

from __future__ import annotations

from datetime import date

import pytest

from audit.query import MAX_QUERY, QueryError, query_parse, term_text

LOGIN_TYPES = ("login.succeeded", "login.failed", "login.throttled")


@pytest.mark.parametrize(
    ("text", "key", "values", "negated"),
    [
        ("actor:alice@acme.test", "actor", ("alice@acme.test",), False),
        ("actor:Alice@ACME.test", "actor", ("alice@acme.test",), False),
        ("actor:42", "actor", ("42",), False),
        ("target:bob@acme.test", "target", ("bob@acme.test",), False),
        ('target:"Bob Example"', "target", ("bob example",), False),
        ("type:login.failed", "type", ("login.failed",), False),
        ("type:login.*", "type", LOGIN_TYPES, False),
        ("type:LOGIN.*", "type", LOGIN_TYPES, False),
        ("type:mfa.reset*", "type", ("mfa.reset_by_admin",), False),
        ("-type:login.*", "type", LOGIN_TYPES, True),
        ("outcome:failure", "outcome", ("failure",), False),
        ("-outcome:Success", "outcome", ("success",), True),
        ("reason:invalid_credentials", "reason", ("invalid_credentials",), False),
        ("ip:203.0.113.7", "ip", ("203.0.113.7",), False),
        ("ip:203.0.113.7/24", "ip", ("203.0.113.0/24",), False),
        ("ip:2001:DB8::1", "ip", ("2001:db8::1",), False),
        ("ip:2001:db8::/32", "ip", ("2001:db8::/32",), False),
        ("-ip:10.0.0.0/8", "ip", ("10.0.0.0/8",), True),
        ("country:de", "country", ("DE",), False),
        ("-country:JP", "country", ("JP",), True),
        ("ACTOR:a@b.test", "actor", ("a@b.test",), False),
    ],
)
def test_a_qualifier_reads_its_value(text, key, values, negated):
    (term,) = query_parse(text).terms
    assert (term.key, term.values, term.negated) == (key, values, negated)


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("created:2026-11-01", date(2026, 11, 1), date(2026, 11, 2)),
        ("created:>=2026-11-01", date(2026, 11, 1), None),
        ("created:>2026-11-01", date(2026, 11, 2), None),
        ("created:<2026-11-01", None, date(2026, 11, 1)),
        ("created:<=2026-11-01", None, date(2026, 11, 2)),
        ("created:2026-11-01..2026-11-30", date(2026, 11, 1), date(2026, 12, 1)),
        ("created:2026-11-01..2026-11-01", date(2026, 11, 1), date(2026, 11, 2)),
        ("created:2026-11-01..*", date(2026, 11, 1), None),
        ("created:*..2026-11-30", None, date(2026, 12, 1)),
        ("created:1900-01-01..9998-12-31", date(1900, 1, 1), date(9999, 1, 1)),
    ],
)
def test_created_reads_days_and_ranges(text, since, until):
    (term,) = query_parse(text).terms
    assert (term.since, term.until) == (since, until)


def test_words_without_a_qualifier_are_free_text_in_order():
    query = query_parse('alice "Bob  Example" type:login.failed carol')
    assert query.free_text == "alice Bob  Example carol"
    assert [term.key for term in query.qualified()] == ["type"]


@pytest.mark.parametrize(
    "text",
    ["X-Injected: 1", "'; DROP TABLE audit_auditevent; --", "%", "_", "\\", '"a:b"', "-"],
)
def test_other_words_are_free_text(text):
    assert all(not term.key for term in query_parse(text).terms)


@pytest.mark.parametrize(
    ("text", "free", "excluded"),
    [
        ("-alice", "", ("alice",)),
        ("NOT alice", "", ("alice",)),
        ("bob -alice NOT carol", "bob", ("alice", "carol")),
        ('-"Ada Admin"', "", ("Ada Admin",)),
        ('NOT "Ada Admin" -alice -alice', "", ("Ada Admin", "alice")),
        ('"-alice"', "-alice", ()),  # quoted: the word itself
        ('"NOT" alice', "NOT alice", ()),
        ("not alice", "not alice", ()),  # lower case is a word like any other
        ("-", "-", ()),
    ],
)
def test_free_text_is_negated_by_a_minus_or_not(text, free, excluded):
    query = query_parse(text)
    assert query.free_text == free
    assert query.excluded_text == excluded
    # Each chip reads back as the word it stands for.
    for term in query.terms:
        (again,) = query_parse(term.label).terms
        assert (again.key, again.value, again.negated) == (term.key, term.value, term.negated)


def test_not_negates_a_qualifier_and_its_chip_takes_the_not_out_too():
    query = query_parse("alice NOT type:login.* NOT bob")
    negated_type, negated_bob = query.terms[1], query.terms[2]
    assert (negated_type.key, negated_type.negated, negated_type.label) == (
        "type",
        True,
        "-type:login.*",
    )
    assert query.without(negated_type) == "alice NOT bob"
    assert query.without(negated_bob) == "alice NOT type:login.*"
    assert negated_bob.label == "-bob"


def test_an_empty_query_has_no_terms():
    assert query_parse("").terms == ()
    assert query_parse("   ").terms == ()


def test_a_word_can_be_taken_out_for_its_chip():
    query = query_parse("actor:a@b.test -type:login.* alice")
    assert [query.without(term) for term in query.terms] == [
        "-type:login.* alice",
        "actor:a@b.test alice",
        "actor:a@b.test -type:login.*",
    ]
    assert [term.label for term in query.terms] == ["actor:a@b.test", "-type:login.*", "alice"]


@pytest.mark.parametrize(
    ("key", "value", "word"),
    [
        ("actor", "a@b.test", "actor:a@b.test"),
        ("actor", "Ada Admin", 'actor:"Ada Admin"'),
        ("ip", "2001:db8::1", "ip:2001:db8::1"),
        ("actor", 'say "hi"', None),
        ("country", "", None),
    ],
)
def test_a_value_is_written_as_a_word_that_reads_back(key, value, word):
    assert term_text(key, value) == word
    if word:
        assert query_parse(word).terms[0].value == value


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("foo:bar", 'Unknown qualifier "foo:" at character 1', 1),
        ("alice action:login", 'Unknown qualifier "action:" at character 7', 7),
        ('actor:"alice', 'Unbalanced quote: the " at character 7 is never closed', 7),
        ('alice "bob', 'the " at character 7 is never closed', 7),
        ('"', 'the " at character 1 is never closed', 1),
        ("actor:", '"actor:" at character 1 has no value', 1),
        ('type:""', "has no value", 1),
        ("actor:" + "a" * 300, "at most 254 are read", 1),
        ("actor:99999999999999999999", "at most 19 of them", 1),
        ("actor:１２", "digits 0-9", 1),
        ("type:login.hacked", "no such event type", 1),
        ("type:nothing.*", "no event type starts with 'nothing.'", 1),
        ("outcome:maybe", "the outcome is success or failure", 1),
        ("reason:<b>", "a reason is a code", 1),
        ("ip:999.1.1.1", "ip:999.1.1.1 at character 1: enter an IP address", 1),
        ("ip:203.0.113.0/99", "CIDR network", 1),
        ("ip:fe80::1%eth0", "CIDR network", 1),
        ("ip:２03.0.113.7", "CIDR network", 1),
        ("ip:2001:db8::/129", "CIDR network", 1),
        ("country:DEU", "two-letter code", 1),
        ("country:ÄÖ", "two-letter code", 1),
        ("created:2026-13-01", "2026-13-01 is not a day of the calendar", 1),
        ("created:2026-02-30", "is not a day of the calendar", 1),
        ("created:03/01/2026", "is not a date; write YYYY-MM-DD", 1),
        ("created:２０２６-03-01", "is not a date", 1),
        ("created:>=yesterday", "is not a date", 1),
        ("created:9999-12-31", "a date from 1900-01-01 to 9998-12-31", 1),
        ("created:1899-12-31", "a date from 1900-01-01 to 9998-12-31", 1),
        ("created:2026-11-30..2026-11-01", "the range is reversed: 2026-11-30 is after", 1),
        ("created:*..*", "a range needs at least one date", 1),
        ("created:2026-11-01..nope", "is not a date", 1),
        ("-created:2026-11-01", "cannot be negated", 1),
        ("NOT created:2026-11-01", "cannot be negated", 1),
        ("alice NOT", "NOT at character 7 has nothing to negate", 7),
        ("NOT NOT alice", "NOT at character 5 has nothing to negate", 5),
        ("NOT -alice", "NOT -alice at character 1 negates twice", 1),
        ("NOT -type:login.*", "negates twice", 1),
        ('-""', "at character 1 negates nothing", 1),
        ("-" + "x" * 200, "free text is 201 characters long; at most 200", 1),
        (" ".join(f"-w{i}" for i in range(11)), "leaves out 11 words; at most 10", 1),
        ("x" * 201, "free text is 201 characters long; at most 200", 1),
        ("x" * 10_240, "The search is 10,240 characters long; at most 1,000", MAX_QUERY + 1),
    ],
)
def test_a_bad_query_names_its_bad_part(text, message, position):
    with pytest.raises(QueryError) as caught:
        query_parse(text)
    assert message in str(caught.value)
    assert caught.value.position == position
