"""A light HTTP/1.1 driver for the callbacks measure: POSTs over connections opened before the
clock starts, each timed from its request's write to its whole answer.

Why not aiohttp's client: 200 POSTs "at once" from one aiohttp ClientSession cost the driver
itself ~0.3 ms of CPU each, so the 200th request left ~60 ms after its clock started and a bare
aiohttp server measured p99 48–77 ms — the driver's queue, not the server's answer. Here a
request is a few pre-encoded bytes and one write, so a burst of 200 is on the wire within a few
milliseconds and what is timed is the server.

Why connections opened in advance: in production KIE's callbacks reach Caddy (deploy/Caddyfile),
which keeps pooled keep-alive connections to the bot; the bot never sees KIE's TCP or TLS set-up.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    ms: float


class Connection:
    """One keep-alive connection; `post` sends one request and reads its whole answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        return cls(reader, writer, f"{parts.hostname}:{parts.port or 80}")

    def encode(self, url: str, body: dict) -> bytes:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (f"POST {target} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        return head + payload

    async def send(self, request: bytes) -> Answer:
        started = time.perf_counter()
        self._writer.write(request)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while (size := int((await self._reader.readline()).strip() or b"0", 16)) > 0:
                await self._reader.readexactly(size + 2)
            await self._reader.readline()
        elif length:
            await self._reader.readexactly(length)
        return Answer(status, 1000 * (time.perf_counter() - started))

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


async def post_all(calls: list[tuple[str, dict]], *, gap: float = 0.0) -> list[Answer]:
    """POST each (url, body) on its own pre-opened connection, all at once (gap 0) or one every
    `gap` seconds; the answers in order."""
    connections = await asyncio.gather(*(Connection.open(url) for url, _ in calls))
    requests = [c.encode(url, body) for c, (url, body) in zip(connections, calls)]
    start = asyncio.get_running_loop().time()

    async def one(i: int) -> Answer:
        if gap:
            delay = start + i * gap - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
        return await connections[i].send(requests[i])

    try:
        return list(await asyncio.gather(*(one(i) for i in range(len(calls)))))
    finally:
        await asyncio.gather(*(c.close() for c in connections))
