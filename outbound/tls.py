"""One vetted TLS connection over TCP to a host and port a customer gave us (syslog over TLS).

The same vetting as outbound.http: the host is resolved once, every address must be public
unless allow_private (development and tests), and the socket goes to one of those very
addresses while the certificate is checked against the host name (also the SNI).
"""

from __future__ import annotations

import socket
import ssl

from .http import RequestFailed, Resolver, destination_vet, system_resolver, url_problem


def _https_url(host: str, port: int) -> str:
    # destination_vet reads URLs; an IPv6 literal is bracketed there.
    return f"https://[{host}]:{port}/" if ":" in host else f"https://{host}:{port}/"


def host_problem(
    host: str, port: int, *, allow_private: bool = False, resolver: Resolver = system_resolver
) -> str | None:
    """Why (host, port) may not be connected to, or None (for forms: checked when saved)."""
    return url_problem(_https_url(host, port), allow_private=allow_private, resolver=resolver)


def connect(
    host: str,
    port: int,
    *,
    allow_private: bool = False,
    timeout: float = 5.0,
    ca_data: str | None = None,
    resolver: Resolver = system_resolver,
) -> ssl.SSLSocket:
    """A TLS socket to a vetted address of host; Refused, or RequestFailed saying why.

    ca_data (PEM) replaces the system's trusted authorities, for receivers with a private CA.
    The certificate and its host name are always checked; TLS 1.2 at least.
    """
    destination = destination_vet(
        _https_url(host, port), allow_private=allow_private, resolver=resolver
    )
    context = ssl.create_default_context(cadata=ca_data or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    failure = RequestFailed("no address to connect to")
    for address in destination.addresses:
        try:
            raw = socket.create_connection((address, destination.port), timeout=timeout)
        except OSError as exc:
            failure = RequestFailed(f"could not connect to {address}: {exc.strerror or exc}")
            continue
        try:
            return context.wrap_socket(raw, server_hostname=destination.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise RequestFailed(
                f"TLS failed: certificate verify failed ({exc.verify_message or exc.reason})"
            ) from None
        except ssl.SSLError as exc:
            raw.close()
            raise RequestFailed(f"TLS failed: {exc.reason or exc}") from None
        except TimeoutError:
            raw.close()
            raise RequestFailed(f"timed out after {timeout:g} s", timed_out=True) from None
        except OSError as exc:
            raw.close()
            raise RequestFailed(f"TLS failed: {exc}") from None
    raise failure
