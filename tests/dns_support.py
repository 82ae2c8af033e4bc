"""A real DNS server for the domain verification tests, on a loopback UDP port.

dnspython resolves but does not serve, so this answers queries itself with dnspython's message
module: TXT records from a table it can change while running, NXDOMAIN for any name not in the
table, or nothing at all (`silent`, a server that times out).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset


class DnsServer:
    """Serves `records` (name -> TXT records, each a list of strings) until closed."""

    def __init__(self, *, silent: bool = False, on_query: Callable[[], None] | None = None) -> None:
        self.records: dict[str, list[list[str]]] = {}
        self.silent = silent
        self.on_query = on_query  # called (in the server's thread) before each answer
        self.queries: list[tuple[str, str]] = []  # (name, type) in the order asked
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        """host:port, as DOMAIN_VERIFICATION_NAMESERVERS takes it."""
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def publish(self, name: str, *strings: str) -> None:
        """Add one TXT record at the name (a record of several strings if given several)."""
        self.records.setdefault(name.lower(), []).append(list(strings))

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append((name, dns.rdatatype.to_text(question.rdtype)))
            if self.on_query is not None:
                self.on_query()
            if self.silent:
                continue
            self._socket.sendto(self._answer(query, name).to_wire(), client)

    def _answer(self, query: dns.message.Message, name: str) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        if question.rdtype == dns.rdatatype.TXT and self.records[name]:
            rdatas = [
                dns.rdtypes.ANY.TXT.TXT(
                    dns.rdataclass.IN, dns.rdatatype.TXT, [s.encode() for s in strings]
                )
                for strings in self.records[name]
            ]
            response.answer.append(dns.rrset.from_rdata_list(question.name, 60, rdatas))
        return response
