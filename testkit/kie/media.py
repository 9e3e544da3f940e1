"""Real, tiny result files built in pure Python: PNGs in the requested aspect ratio and MP4s
holding a genuine H.264 stream (I_PCM macroblocks, so no encoder is needed)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

SHORT_SIDE = 64
PAD_CHUNK = 1024 * 1024


def dimensions(aspect_ratio: str | None, short_side: int = SHORT_SIDE, *, even: bool = False) -> tuple[int, int]:
    """(width, height) with the given short side; "16:9" → (114, 64)."""
    try:
        w_part, h_part = (int(p) for p in (aspect_ratio or "1:1").split(":"))
        if w_part <= 0 or h_part <= 0:
            raise ValueError
    except ValueError:
        w_part, h_part = 1, 1
    if w_part >= h_part:
        width, height = round(short_side * w_part / h_part), short_side
    else:
        width, height = short_side, round(short_side * h_part / w_part)
    if even:
        width += width % 2
        height += height % 2
    return width, height


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _colour(seed: str) -> tuple[int, int, int]:
    digest = zlib.crc32(seed.encode())
    return 40 + digest % 180, 40 + (digest >> 8) % 180, 40 + (digest >> 16) % 180


def png_parts(width: int, height: int, seed: str = "") -> tuple[bytes, bytes]:
    """(everything before IEND, the IEND chunk), so a caller can slip padding in between."""
    r, g, b = _colour(seed)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        shade = y * 128 // max(height - 1, 1)
        for x in range(width):
            rows += bytes(((r + shade) % 256, (g + x) % 256, b))
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return head + _chunk(b"IDAT", zlib.compress(bytes(rows), 9)), _chunk(b"IEND", b"")


def make_png(width: int, height: int, seed: str = "") -> bytes:
    head, end = png_parts(width, height, seed)
    return head + end


def padded_png(width: int, height: int, seed: str, total: int) -> tuple[int, Iterator[bytes]]:
    """A valid PNG of about `total` bytes: the bulk sits in a private ancillary chunk ("kiEp")
    that decoders skip. Returns (exact size, chunk iterator) so it can be streamed."""
    head, end = png_parts(width, height, seed)
    pad = max(total - len(head) - len(end) - 12, 0)

    def chunks() -> Iterator[bytes]:
        yield head + struct.pack(">I", pad) + b"kiEp"
        crc = zlib.crc32(b"kiEp")
        left = pad
        block = bytes(PAD_CHUNK)
        while left:
            piece = block[: min(left, PAD_CHUNK)]
            crc = zlib.crc32(piece, crc)
            left -= len(piece)
            yield piece
        yield struct.pack(">I", crc) + end

    return len(head) + 12 + pad + len(end), chunks()
