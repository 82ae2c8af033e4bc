"""One vetted HTTP request to a URL a customer gave us.

The host is resolved once; every address it resolves to must be public (outbound.addresses);
the connection goes to one of those very addresses, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot move it. TLS is verified against the host name
of the URL, which is also the SNI and the Host header. Redirects are returned, never followed;
each wait is bounded by the timeout and the body read is capped.

urllib3 connection pools make the pinning plain: the pool connects to the address it is given,
`server_hostname` names the host for SNI and certificate checking, and no proxy from the
environment applies.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from .addresses import Address, is_public

# Resolves (host, port) to IP address strings; the system resolver unless a caller or a test
# passes another.
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"https": 443, "http": 80}
# At most this many of a host's vetted addresses are tried, each only if connecting failed.
MAX_ADDRESSES = 3
# A last label of digits or 0x-hex is no DNS name but one of inet_aton's shorthands
# (2130706433, 0x7f.1, 127.1, 0177.0.0.1): refused rather than guessed at.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


class Refused(Exception):
    """The URL may not be requested; the message says why, for the person who configured it."""


class RequestFailed(Exception):
    """The request was allowed but did not complete (connection, TLS, timeout, protocol)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Destination:
    """A vetted URL: where to connect and what to call the host while doing it."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes  # at most max_response_bytes of it
    truncated: bool
    address: str  # the address the request went to


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from getaddrinfo, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def destination_vet(
    url: str, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> Destination:
    """Parse and resolve the URL once; Refused unless every address it names is public.

    allow_private (development and tests only) also allows plain http and any address.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("That is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise Refused("The URL must use https://.")
    if parts.username is not None or parts.password is not None:
        raise Refused("Put no user name or password in the URL.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("The URL has no host name.")
    port = port or DEFAULT_PORTS[scheme]
    literal = _address(host)
    if literal is None and _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        raise Refused(
            f"The host {host} is neither a host name nor an IP address in its usual form."
        )
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            # One ASCII form for resolving, SNI and the Host header alike.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise Refused(f"The host {host} is not a valid host name.") from None
        try:
            found = list(resolver(host, port))
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise Refused(f"The host {host} could not be resolved.")
    for text in found:
        address = _address(text)
        if address is None or (not allow_private and not is_public(address)):
            raise Refused(
                f"The host {host} points at a private, loopback or reserved address "
                f"({text}); requests go to public addresses only."
            )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, host, port, target, tuple(found[:MAX_ADDRESSES]))


def url_problem(
    url: str, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> str | None:
    """Why the URL may not be requested, or None (for forms: check when it is saved)."""
    try:
        destination_vet(url, allow_private=allow_private, resolver=resolver)
    except Refused as exc:
        return str(exc)
    return None


def _pool(
    destination: Destination,
    address: str,
    *,
    timeout: float,
    ca_certs: str | None,
    ca_data: str | None = None,
) -> urllib3.HTTPConnectionPool:
    timeouts = urllib3.Timeout(connect=timeout, read=timeout)
    if destination.scheme == "http":
        return urllib3.HTTPConnectionPool(
            address, destination.port, timeout=timeouts, maxsize=1, retries=False
        )
    context = ssl.create_default_context(cafile=ca_certs, cadata=ca_data)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # check_hostname stays on: the certificate is checked against server_hostname, the URL's
    # host, while the socket goes to the vetted address.
    return urllib3.HTTPSConnectionPool(
        address,
        destination.port,
        timeout=timeouts,
        maxsize=1,
        retries=False,
        ssl_context=context,
        server_hostname=destination.host,
    )


def _read_capped(response: urllib3.BaseHTTPResponse, *, limit: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        if time.monotonic() > deadline:
            raise RequestFailed("the response took too long", timed_out=True)
        chunk = response.read(min(16384, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    allow_private: bool = False,
    timeout: float = 5.0,
    max_response_bytes: int = 65536,
    resolver: Resolver = system_resolver,
    ca_certs: str | None = None,
    ca_data: str | None = None,
) -> Response:
    """Make one request to a vetted address of the URL's host; Refused or RequestFailed.

    ca_certs (a file) or ca_data (PEM) replace the system's trusted authorities.
    """
    destination = destination_vet(url, allow_private=allow_private, resolver=resolver)
    sent_headers = {**(headers or {}), "Host": destination.host_header}
    deadline = time.monotonic() + 2 * timeout
    failure = RequestFailed("no address to connect to")
    for address in destination.addresses:
        pool = _pool(destination, address, timeout=timeout, ca_certs=ca_certs, ca_data=ca_data)
        try:
            response = pool.urlopen(
                method,
                destination.target,
                body=body,
                headers=sent_headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
            )
            try:
                content = _read_capped(response, limit=max_response_bytes, deadline=deadline)
                return Response(
                    status=response.status,
                    headers=dict(response.headers),
                    body=content[:max_response_bytes],
                    truncated=len(content) > max_response_bytes,
                    address=address,
                )
            finally:
                response.close()  # discards an unread rest instead of draining it
        except NewConnectionError as exc:
            # Nothing was sent: the next vetted address may answer.
            failure = RequestFailed(f"could not connect to {address}: {_reason(exc)}")
        except Urllib3Timeout:
            raise RequestFailed(f"timed out after {timeout:g} s", timed_out=True) from None
        except SSLError as exc:
            raise RequestFailed(f"TLS failed: {_reason(exc)}") from None
        except (HTTPError, OSError, ValueError) as exc:
            raise RequestFailed(str(_reason(exc))) from None
        finally:
            pool.close()
    raise failure


def _reason(exc: BaseException) -> str:
    # urllib3 wraps the socket or ssl error; its message is the useful part.
    return str(exc.__context__ or exc)
