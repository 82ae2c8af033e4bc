"""User agent parsing with the user-agents library, cached: the same few strings recur."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from user_agents import parse

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class ParsedAgent:
    browser: str
    os: str
    device_type: str


def _version(family: str, version: str) -> str:
    return f"{family} {version}".strip() if family and family != "Other" else family


@lru_cache(maxsize=4096)
def parse_user_agent(raw: str) -> ParsedAgent:
    """Parse an already truncated user agent string into browser, OS and device type."""
    if not raw:
        return ParsedAgent("", "", "")
    agent = parse(raw)
    if agent.is_bot:
        device = "bot"
    elif agent.is_tablet:
        device = "tablet"
    elif agent.is_mobile:
        device = "mobile"
    elif agent.is_pc:
        device = "desktop"
    else:
        device = "other"
    browser = _version(agent.browser.family, agent.browser.version_string.split(".")[0])
    os_name = _version(agent.os.family, agent.os.version_string)
    return ParsedAgent(browser[:64], os_name[:64], device)
