"""Browsers for the server under test: real HTTP, cookies, CSRF from the page, every answer kept."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SIGN_IN = "/sign-in/"
DEMO_PASSWORD = "demo-pass-2026"


@dataclass(frozen=True)
class Answer:
    """One request and what came back: a status, or the error that stood for one."""

    method: str
    path: str
    status: int | None
    seconds: float
    error: str = ""

    def __str__(self) -> str:
        outcome = self.status if self.status is not None else self.error
        return f"{self.method} {self.path} -> {outcome} in {self.seconds:.1f} s"


class Journal:
    """Every answer of a scenario, from any thread."""

    def __init__(self) -> None:
        self._answers: list[Answer] = []
        self._lock = threading.Lock()

    def add(self, answer: Answer) -> None:
        with self._lock:
            self._answers.append(answer)

    @property
    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def failures(self) -> list[Answer]:
        """Server errors, and requests that got no answer at all."""
        return [a for a in self.answers if a.status is None or a.status >= 500]


class Browser:
    """One person's browser: its own cookies (session, CSRF, device), real HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        journal: Journal | None = None,
        timeout: float = 20.0,
        close_connections: bool = False,
    ) -> None:
        self.base_url = base_url
        self.journal = journal if journal is not None else Journal()
        self.timeout = timeout
        self.session = requests.Session()
        if close_connections:
            # A new connection per request: the server takes requests in the order they came.
            self.session.headers["Connection"] = "close"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """Send it; None (and an error in the journal) when no answer came in time."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        started = time.monotonic()
        try:
            response = self.session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as exc:
            self.journal.add(
                Answer(method, path, None, time.monotonic() - started, type(exc).__name__)
            )
            return None
        self.journal.add(Answer(method, path, response.status_code, time.monotonic() - started))
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response | None:
        return self.request("GET", path, **kwargs)

    def csrf_token(self, path: str) -> str | None:
        """The CSRF token of the form on the page at `path`, as a browser would submit it."""
        page = self.get(path)
        if page is None or page.status_code != 200:
            return None
        found = CSRF_INPUT.search(page.text)
        return found.group(1) if found else None

    def post(
        self, path: str, data: dict[str, str], *, token: str | None
    ) -> requests.Response | None:
        if token is None:  # the form page did not come: nothing to submit
            return None
        return self.request("POST", path, data={**data, "csrfmiddlewaretoken": token})

    def submit(self, path: str, data: dict[str, str]) -> requests.Response | None:
        """Open the form at `path` and submit it."""
        return self.post(path, data, token=self.csrf_token(path))

    def sign_in(self, email: str, password: str = DEMO_PASSWORD) -> requests.Response | None:
        return self.submit(SIGN_IN, {"email": email, "password": password})


def signed_in(response: requests.Response | None) -> bool:
    """A sign-in that let the person in: redirected away from the sign-in page."""
    return (
        response is not None
        and response.status_code == 303
        and not response.headers.get("Location", "").startswith(SIGN_IN)
    )
