"""Links that add a value of the results table to the search (the Audit and Activity Logs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template

from audit.query import term_text

register = template.Library()


def search_url(request: Any, *, q: str, drop: tuple[str, ...] = ()) -> str:
    """This page's URL with the search `q`, without its page cursor or the dropped fields."""
    params = request.GET.copy()
    for name in ("cursor", *drop):
        params.pop(name, None)
    if q:
        params["q"] = q
    else:
        params.pop("q", None)
    query = params.urlencode()
    return f"{request.path}?{query}" if query else request.path


def _link_base(request: Any) -> tuple[str, str]:
    """The page's URL up to its search (every other parameter but the cursor) and the search;
    worked out once per request, as a page links a few hundred values."""
    cached: tuple[str, str] | None = getattr(request, "_search_link_base", None)
    if cached is None:
        params = request.GET.copy()
        params.pop("cursor", None)
        current = " ".join(params.pop("q", [""])[-1].split())
        rest = params.urlencode()
        cached = (f"{request.path}?{rest}&" if rest else f"{request.path}?", current)
        request._search_link_base = cached
    return cached


@register.inclusion_tag("accounts/_filter_link.html", takes_context=True)
def filter_link(context: dict[str, Any], key: str, value: Any, text: str = "") -> dict[str, Any]:
    """The value as a link that narrows the search to it (plain text if it cannot be written)."""
    shown = text or value
    word = term_text(key, str(value or "").strip())
    request = context.get("request")
    if word is None or request is None:
        return {"url": "", "text": shown}
    prefix, current = _link_base(request)
    if f" {word} " in f" {current} ":  # already searched for
        return {"url": "", "text": shown}
    return {
        "url": prefix + urlencode({"q": f"{current} {word}".strip()}),
        "text": shown,
        "word": word,
    }
