"""The search language of the Audit Log and the Activity Log, after GitHub's audit log search.

    actor:alice@acme.test -type:login.* ip:203.0.113.0/24 created:2026-11-01..2026-11-30 bob

A query is words separated by spaces. A word `qualifier:value` narrows by one field; a leading
`-` negates it; a value in double quotes may hold spaces. Every other word is free text, matched
as the text filter always was (`audit.selectors`); free text negated (`-bob`, or `NOT bob`)
leaves out the events whose people's names or addresses contain it. `NOT` before a qualifier is
its `-`. The same qualifier given twice with positive values matches either value
(`type:login.failed type:mfa.verification_failed`); different qualifiers and every negation all
apply. Dates are days (YYYY-MM-DD) in the viewer's time zone, turned into instants by whoever
reads them (`audit.forms`).

`query_parse` is pure: text in, a Query or a QueryError naming the bad part out.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

from .models import EventType, Outcome

MAX_QUERY = 1000
MAX_TEXT = 200
# Negated free-text words a search may hold: each is looked up among the members.
MAX_EXCLUDED_WORDS = 10
MAX_VALUE = 254
# The days a query may name: see audit.forms (a day must become instants in any zone).
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)
QUALIFIERS = ("actor", "target", "type", "outcome", "reason", "ip", "country", "created")
# Qualifiers whose values name one person each (an email address, a label or a user id).
PERSON_QUALIFIERS = ("actor", "target")
# A user id is a PostgreSQL bigint.
MAX_USER_ID = 2**63 - 1
IP_MESSAGE = "an IP address (203.0.113.7) or a CIDR network (203.0.113.0/24)"

# The word that negates the word after it, as GitHub's search writes it (upper case only: "not"
# is a word people search for).
NOT = "NOT"
_QUALIFIER = re.compile(r"^(-?)([A-Za-z_]+):(.*)$", re.DOTALL)
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_REASON = re.compile(r"^[a-z0-9_.-]+$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_COMPARISON = re.compile(r"^(>=|<=|>|<)?(.*)$", re.DOTALL)


class QueryError(ValueError):
    """A query that cannot be read; the message names the bad part and where it starts."""

    def __init__(self, message: str, *, position: int, token: str = "") -> None:
        super().__init__(message)
        self.position = position  # 1-based character of the bad part
        self.token = token


@dataclass(frozen=True)
class Term:
    """One word of a query: a qualifier with its value, or free text (key "")."""

    key: str
    value: str  # as the person wrote it, without its quotes
    negated: bool
    start: int  # the word's span in the query text (0-based, end exclusive)
    end: int
    # What the value means: event types for type:, a normalised address or network for ip:,
    # an upper-case code for country:, the lower-cased person for actor: and target:.
    values: tuple[str, ...] = ()
    # created: the first day in, and the first day after, the range (None: open).
    since: date | None = None
    until: date | None = None

    @property
    def label(self) -> str:
        """The word as a chip shows it."""
        quoted = (
            any(c.isspace() for c in self.value)
            or (not self.key and ":" in self.value)
            or (not self.key and not self.negated and self.value.startswith("-"))
            or (not self.key and self.value == NOT)
        )
        value = f'"{self.value}"' if quoted else self.value
        if not self.key:
            return f"{'-' if self.negated else ''}{value}"
        return f"{'-' if self.negated else ''}{self.key}:{value}"


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...] = ()

    @property
    def free_text(self) -> str:
        """The free-text words, joined by single spaces."""
        return " ".join(term.value for term in self.terms if not term.key and not term.negated)

    @property
    def excluded_text(self) -> tuple[str, ...]:
        """The negated free-text words: none may appear in an event's searchable text."""
        return tuple(
            dict.fromkeys(term.value for term in self.terms if not term.key and term.negated)
        )

    def qualified(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.key)

    def without(self, term: Term) -> str:
        """The query text with one word taken out."""
        return " ".join(f"{self.text[: term.start]} {self.text[term.end :]}".split())


def term_text(key: str, value: str, *, negated: bool = False) -> str | None:
    """`key:value` as a query word, quoted where needed; None if the value cannot be written
    (it holds a double quote, which the language has no escape for)."""
    if '"' in value or not value:
        return None
    written = f'"{value}"' if any(c.isspace() for c in value) else value
    return f"{'-' if negated else ''}{key}:{written}"


def _words(text: str) -> list[tuple[int, int, str]]:
    """The words of the text with their spans; quotes keep spaces inside one word."""
    words = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace():
            if text[i] == '"':
                close = text.find('"', i + 1)
                if close == -1:
                    raise QueryError(
                        f'Unbalanced quote: the " at character {i + 1} is never closed.',
                        position=i + 1,
                        token=text[start:],
                    )
                i = close + 1
            else:
                i += 1
        words.append((start, i, text[start:i]))
    return words


def _unquote(value: str) -> str:
    return value.replace('"', "")


def query_parse(text: str) -> Query:
    """Read a query; raise QueryError naming the first bad word."""
    if len(text) > MAX_QUERY:
        raise QueryError(
            f"The search is {len(text):,} characters long; at most {MAX_QUERY:,} are read.",
            position=MAX_QUERY + 1,
        )
    terms = []
    words = _words(text)
    negate_next: int | None = None  # where the NOT before this word starts
    for index, (word_start, end, word) in enumerate(words):
        start = word_start if negate_next is None else negate_next
        if word == NOT:
            if negate_next is not None or index == len(words) - 1:
                raise QueryError(
                    f"NOT at character {word_start + 1} has nothing to negate: write NOT "
                    'and then a word or a qualifier (NOT bob, NOT type:login.*), or "NOT" in '
                    "quotes to search for it.",
                    position=word_start + 1,
                    token=word,
                )
            negate_next = word_start
            continue
        by_not = negate_next is not None
        negate_next = None
        match = _QUALIFIER.match(word)
        if match is None:
            quoted = word.startswith('"')
            minus = not quoted and word.startswith("-") and len(word) > 1
            value = _unquote(word[1:] if minus else word)
            if (minus or by_not) and not value.strip():
                raise QueryError(
                    f"{word} at character {start + 1} negates nothing: write -word.",
                    position=start + 1,
                    token=word,
                )
            if by_not and minus:
                raise QueryError(
                    f"NOT {word} at character {start + 1} negates twice: write one of them.",
                    position=start + 1,
                    token=word,
                )
            terms.append(Term(key="", value=value, negated=minus or by_not, start=start, end=end))
            continue
        minus_sign, key, raw = match.groups()
        if by_not and minus_sign:
            raise QueryError(
                f"NOT {word} at character {start + 1} negates twice: write one of them.",
                position=start + 1,
                token=word,
            )
        negated = bool(minus_sign) or by_not
        key = key.lower()
        where = f"at character {start + 1}"
        if key not in QUALIFIERS:
            known = ", ".join(f"{name}:" for name in QUALIFIERS)
            raise QueryError(
                f'Unknown qualifier "{key}:" {where}. Use one of {known}',
                position=start + 1,
                token=word,
            )
        value = _unquote(raw).strip()
        if not value:
            raise QueryError(
                f'"{word}" {where} has no value: write {key}:something.',
                position=start + 1,
                token=word,
            )
        if len(value) > MAX_VALUE:
            raise QueryError(
                f"The value of {key}: {where} is {len(value):,} characters long; "
                f"at most {MAX_VALUE} are read.",
                position=start + 1,
                token=word[:40],
            )
        term = Term(key=key, value=value, negated=negated, start=start, end=end)
        try:
            terms.append(_read_value(term))
        except ValueError as exc:
            raise QueryError(f"{word} {where}: {exc}", position=start + 1, token=word) from exc
    query = Query(text=text, terms=tuple(terms))
    if len(query.excluded_text) > MAX_EXCLUDED_WORDS:
        raise QueryError(
            f"The search leaves out {len(query.excluded_text)} words; at most "
            f"{MAX_EXCLUDED_WORDS} are read.",
            position=1,
        )
    free = len(query.free_text) + sum(len(word) + 1 for word in query.excluded_text)
    if free > MAX_TEXT:
        raise QueryError(
            f"The free text is {free:,} characters long; at most {MAX_TEXT} are read.",
            position=1,
        )
    return query


def _read_value(term: Term) -> Term:
    """The term with what its value means; ValueError says why it means nothing."""
    key, value = term.key, term.value
    if key in PERSON_QUALIFIERS:
        person = value.lower()
        if person.isdigit() and (not person.isascii() or int(person) > MAX_USER_ID):
            raise ValueError("a user id is written with the digits 0-9, at most 19 of them.")
        return replace(term, values=(person,))
    if key == "type":
        return replace(term, values=_event_types(value.lower()))
    if key == "outcome":
        if value.lower() not in Outcome.values:
            raise ValueError(f"the outcome is {' or '.join(Outcome.values)}.")
        return replace(term, values=(value.lower(),))
    if key == "reason":
        if not _REASON.match(value):
            raise ValueError("a reason is a code such as invalid_credentials.")
        return replace(term, values=(value,))
    if key == "ip":
        return replace(term, values=(ip_or_network(value),))
    if key == "country":
        if not _COUNTRY.match(value):
            raise ValueError("a country is a two-letter code such as DE.")
        return replace(term, values=(value.upper(),))
    assert key == "created"
    if term.negated:
        raise ValueError("a date range cannot be negated; use created:< or created:>= instead.")
    since, until = _created(value)
    return replace(term, since=since, until=until)


def _event_types(value: str) -> tuple[str, ...]:
    if value.endswith("*"):
        prefix = value[:-1]
        found = tuple(t for t in EventType.values if t.startswith(prefix))
        if not found:
            raise ValueError(f"no event type starts with {prefix!r}.")
        return found
    if value not in EventType.values:
        raise ValueError(
            "no such event type; write one such as login.failed, or a prefix such as login.*"
        )
    return (value,)


def ip_or_network(value: str) -> str:
    """An address or a CIDR network (v4 or v6), normalised; ValueError for anything else."""
    # An IPv6 zone ("fe80::1%eth0") names an interface of some host; no stored address has
    # one, and PostgreSQL's inet type cannot hold it. Only ASCII is an address here.
    if "%" in value or not value.isascii():
        raise ValueError(f"enter {IP_MESSAGE}.")
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError(f"enter {IP_MESSAGE}.") from exc


def _day(value: str) -> date:
    if not _DAY.match(value):
        raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-11-01.")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value} is not a day of the calendar.") from exc
    if not MIN_DATE <= day <= MAX_DATE:
        raise ValueError(f"a date from {MIN_DATE:%Y-%m-%d} to {MAX_DATE:%Y-%m-%d}.")
    return day


def _created(value: str) -> tuple[date | None, date | None]:
    """The first day in and the first day after a created: value (open ends are None)."""
    if ".." in value:
        first, _, last = value.partition("..")
        since = None if first == "*" else _day(first)
        until = None if last == "*" else _day(last) + timedelta(days=1)
        if since is None and until is None:
            raise ValueError("a range needs at least one date.")
        if since is not None and until is not None and since >= until:
            raise ValueError(f"the range is reversed: {first} is after {last}.")
        return since, until
    match = _COMPARISON.match(value)
    assert match is not None
    operator, rest = match.groups()
    day = _day(rest)
    if operator == ">=":
        return day, None
    if operator == ">":
        return day + timedelta(days=1), None
    if operator == "<":
        return None, day
    if operator == "<=":
        return None, day + timedelta(days=1)
    return day, day + timedelta(days=1)
