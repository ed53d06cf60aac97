"""A DNS server on loopback that answers from a dict zone (UDP and TCP).

``zone`` maps an owner name to ``{type: [rdata text, …]}``, for example::

    {"example.com": {"MX": ["10 mx.example.com."], "TXT": ['"v=spf1 -all"']},
     "1.2.0.192.in-addr.arpa": {"PTR": ["mta1.example.com."]}}

A name that is absent answers NXDOMAIN; a present name without the asked type
answers NOERROR with no records; a name in ``silent`` is never answered (the
client times out). Names are matched case-insensitively. Answers over 512 bytes
are truncated over UDP, so clients retry over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = ["Zone", "ZoneServer"]

Zone = Mapping[str, Mapping[str, Sequence[str]]]


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class ZoneServer:
    """``async with ZoneServer(zone) as server``: ``server.port`` (same for UDP
    and TCP) on ``host``; ``server.queries`` lists (name, type) asked."""

    def __init__(
        self, zone: Zone, host: str = "127.0.0.1", silent: Collection[str] = ()
    ) -> None:
        self.zone = {_key(name): dict(types) for name, types in zone.items()}
        self.silent = {_key(name) for name in silent}
        self.host = host
        self.port = 0
        self.queries: list[tuple[str, str]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, wire: bytes, *, udp: bool) -> bytes | None:
        """The response's wire form; None for a name that gets no answer."""
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = _key(str(question.name))
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        types = self.zone.get(name)
        if types is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif types.get(rdtype):
            response.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", rdtype, *types[rdtype])
            )
        data: bytes = response.to_wire()
        if udp and len(data) > 512:
            response.answer.clear()
            response.flags |= dns.flags.TC
            data = response.to_wire()
        return data

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, 0)
        self.port = self._tcp.sockets[0].getsockname()[1]
        server = self

        class _UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: Any = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                response = server.answer(data, udp=True)
                if response is not None:
                    self.transport.sendto(response, addr)

        transport, _ = await loop.create_datagram_endpoint(
            _UDP, local_addr=(self.host, self.port)
        )
        self._udp = transport
        return self

    async def _serve_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            for _ in range(100):  # bounded: a client asks a few questions at most
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = self.answer(await reader.readexactly(size), udp=False)
                if data is None:
                    break
                writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def __aexit__(self, *exc: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
