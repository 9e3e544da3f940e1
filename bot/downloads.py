"""Safe download of KIE result files: allow-listed hosts, manual redirects, size cap, streaming.

A result URL comes from KIE's record (or, worse, from a callback body nobody signed), so it is
untrusted input: it must not let someone make us fetch internal addresses or fill the disk.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

# httpx's first request imports its anyio backend (26 modules, ~100 ms) in the middle of the
# event loop — the first download after start held every callback for that long. Imported here,
# with the rest of the start-up, so `kiebot run` has them before it is ready.
import anyio._backends._asyncio  # noqa: F401  (anyio imports its asyncio backend lazily)
import httpcore._backends.anyio  # noqa: F401  (httpcore's AutoBackend imports it lazily)

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_REDIRECTS = 5


class DownloadError(Exception):
    """Base; `.user_reason` is what a user may read, `.retryable` whether a later try may work."""

    retryable = False
    user_reason = "the result file could not be downloaded"


class DownloadRefusedError(DownloadError):
    """The URL breaks a rule (foreign host, private address, scheme, too big). Never retried."""

    user_reason = "the result file came from a location we do not trust"


class DownloadTooLargeError(DownloadRefusedError):
    user_reason = "the result file is larger than we can store"


class DownloadExpiredError(DownloadError):
    """403/404 from the file host: KIE's temporary link expired; ask for a fresh one."""

    retryable = True


class DownloadUnavailableError(DownloadError):
    """Network error or 5xx: try again later."""

    retryable = True


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip().lstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _explicitly_listed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == entry.lower().strip() for entry in allowed)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass(frozen=True)
class Download:
    url: str
    content_type: str | None
    content_length: int | None
    chunks: AsyncIterator[bytes]


class SafeDownloader:
    def __init__(
        self,
        allowed_hosts: Sequence[str],
        *,
        max_bytes: int,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allowed_hosts = [h.lower() for h in allowed_hosts]
        self.max_bytes = max_bytes
        self._resolver = resolver
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check_url(self, url: str) -> None:
        """Raise DownloadRefusedError unless `url` may be fetched."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadRefusedError(f"refused url scheme/host: {parts.scheme!r}")
        host = parts.hostname
        if not host_allowed(host, self.allowed_hosts):
            raise DownloadRefusedError(f"refused host {host!r}: not in KIE_RESULT_HOSTS")
        if _explicitly_listed(host, self.allowed_hosts):
            return  # operator named this exact host (the emulator on 127.0.0.1 in tests/demo)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self._resolver(host, port)
        except OSError as exc:
            raise DownloadUnavailableError(f"cannot resolve {host!r}: {exc}") from None
        for address in addresses:
            try:
                public = _is_public(address)
            except ValueError:
                public = False
            if not public:
                raise DownloadRefusedError(f"refused host {host!r}: resolves to a private address")

    @asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Download]:
        """Stream `url`, following up to 5 redirects, each hop re-checked; body capped."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await self.check_url(current)
            try:
                request = self._client.build_request("GET", current)
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise DownloadUnavailableError(f"download failed: {type(exc).__name__}") from None
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise DownloadUnavailableError("redirect without a location")
                    current = urljoin(current, location)
                    continue
                if response.status_code in (403, 404, 410):
                    raise DownloadExpiredError(f"file host answered {response.status_code}")
                if response.status_code >= 500 or response.status_code == 429:
                    raise DownloadUnavailableError(f"file host answered {response.status_code}")
                if response.status_code != 200:
                    raise DownloadRefusedError(f"file host answered {response.status_code}")
                length = response.headers.get("content-length")
                size = int(length) if length and length.isdigit() else None
                if size is not None and size > self.max_bytes:
                    raise DownloadTooLargeError(f"file is {size} bytes, cap {self.max_bytes}")
                chunks = self._capped(response)
                head = await _read_head(chunks, 16)
                sniffed = sniff_media_type(head)
                if sniffed is None:
                    # An HTML error page or a script stored as .jpg and served from a public
                    # bucket is worse than no file: only real images and videos are kept.
                    raise DownloadRefusedError("the file is not an image or a video")
                yield Download(
                    url=current,
                    content_type=sniffed,
                    content_length=size,
                    chunks=_prepend(head, chunks),
                )
                return
            finally:
                await response.aclose()
        raise DownloadRefusedError("too many redirects")

    async def _capped(self, response: httpx.Response) -> AsyncIterator[bytes]:
        total = 0
        try:
            async for chunk in response.aiter_bytes(64 * 1024):
                total += len(chunk)
                if total > self.max_bytes:
                    raise DownloadTooLargeError(f"file exceeds cap {self.max_bytes}")
                yield chunk
        except httpx.HTTPError as exc:
            raise DownloadUnavailableError(f"download interrupted: {type(exc).__name__}") from None


# Magic numbers of the formats KIE returns; the declared Content-Type is not trusted.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
)


def sniff_media_type(head: bytes) -> str | None:
    """The media type the first bytes prove, or None for anything else (HTML, scripts, …)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for offset, magic, media_type in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return media_type
    return None


async def _read_head(chunks: AsyncIterator[bytes], size: int) -> bytes:
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk
