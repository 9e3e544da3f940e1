"""Emulator result files: real PNGs in the requested ratio, structurally valid MP4/H.264."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from testkit.kie import sign
from testkit.kie.media import dimensions, make_png, padded_png
from testkit.kie.mp4 import _pps, _sps, make_mp4, padded_mp4


def ihdr(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    return struct.unpack(">II", data[16:24])


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) for each box in data[start:end]."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        assert size >= header and pos + size <= end, f"box {kind!r} overruns its parent"
        out.append((kind, pos + header, pos + size))
        pos += size
    assert pos == end
    return out


def child(data: bytes, parent: tuple[bytes, int, int], kind: bytes, skip: int = 0):
    found = [b for b in boxes(data, parent[1] + skip, parent[2]) if b[0] == kind]
    assert found, f"no {kind!r} in {parent[0]!r}"
    return found[0]


@pytest.mark.parametrize(
    ("ratio", "size"),
    [("1:1", (64, 64)), ("16:9", (114, 64)), ("9:16", (64, 114)), ("4:3", (85, 64)),
     ("3:4", (64, 85)), ("3:2", (96, 64)), ("2:3", (64, 96)), ("21:9", (149, 64))],
)
def test_png_matches_aspect_ratio(ratio, size):
    data = make_png(*dimensions(ratio), seed="t")
    assert ihdr(data) == size
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes IDAT: the pixels are real, not just a header
    assert image.size == size and image.mode == "RGB"
    w, h = (int(x) for x in ratio.split(":"))
    assert abs(size[0] / size[1] - w / h) < 0.02


def test_even_dimensions_for_video():
    assert dimensions("4:3", even=True) == (86, 64)
    assert dimensions("nonsense") == (64, 64)


def test_padded_png_is_valid_and_exact():
    size, chunks = padded_png(64, 64, "x", 3_000_000)
    data = b"".join(chunks)
    assert len(data) == size and 2_999_000 < size <= 3_000_100
    Image.open(io.BytesIO(data)).load()
    assert data.endswith(b"IEND\xaeB`\x82")


def test_sps_pps_match_the_known_hello_world_stream():
    # Ben Mesander's 128x96 I_PCM encoder ships SPS 67 42 00 0a f8 41 a2 / PPS 68 ce 38 80; ours
    # only differs in level_idc (30 instead of 10).
    assert _sps(8, 6, 0, 0) == bytes.fromhex("6742001ef841a2")
    assert _pps() == bytes.fromhex("68ce3880")


@pytest.mark.parametrize(("width", "height", "seconds"), [(114, 64, 5), (64, 114, 10), (64, 64, 5)])
def test_mp4_structure(width, height, seconds):
    data = make_mp4(width, height, seconds)
    top = boxes(data)
    assert [b[0] for b in top] == [b"ftyp", b"moov", b"mdat"]
    assert data[8:12] == b"isom" and b"avc1" in data[16:top[0][2]]
    moov = top[1]
    mvhd = child(data, moov, b"mvhd")
    timescale, duration = struct.unpack(">II", data[mvhd[1] + 12 : mvhd[1] + 20])
    assert duration / timescale == seconds
    trak = child(data, moov, b"trak")
    tkhd = child(data, trak, b"tkhd")
    w16, h16 = struct.unpack(">II", data[tkhd[2] - 8 : tkhd[2]])
    assert (w16 >> 16, h16 >> 16) == (width, height)
    stbl = child(data, child(data, child(data, trak, b"mdia"), b"minf"), b"stbl")
    stsz = child(data, stbl, b"stsz")
    _, count = struct.unpack(">II", data[stsz[1] + 4 : stsz[1] + 12])
    sizes = struct.unpack(f">{count}I", data[stsz[1] + 12 : stsz[2]])
    stco = child(data, stbl, b"stco")
    offset = struct.unpack(">I", data[stco[1] + 8 : stco[1] + 12])[0]
    mdat = top[2]
    assert offset == mdat[1] and sum(sizes) == mdat[2] - mdat[1] and count == seconds
    pos = offset
    for size in sizes:  # each sample is one length-prefixed IDR NAL unit
        assert struct.unpack(">I", data[pos : pos + 4])[0] == size - 4
        assert data[pos + 4] == 0x65
        assert b"\x00\x00\x00" not in data[pos + 4 : pos + size]
        pos += size
    stsd = child(data, stbl, b"stsd")
    avc1 = child(data, stsd, b"avc1", skip=8)
    assert struct.unpack(">HH", data[avc1[1] + 24 : avc1[1] + 28]) == (width, height)
    avcc = child(data, avc1, b"avcC", skip=78)
    assert data[avcc[1]] == 1 and data[avcc[1] + 1] == 66


def test_padded_mp4_keeps_a_valid_box_tree():
    base = make_mp4(64, 64, 5)
    size, chunks = padded_mp4(base, 5_000_000)
    data = b"".join(chunks)
    assert len(data) == size and size >= 5_000_000 - 16
    assert [b[0] for b in boxes(data)] == [b"ftyp", b"moov", b"mdat", b"free"]


def test_hmac_matches_the_reference_vector():
    assert sign("test-webhook-hmac-key", "ee9c2715375b7837f8bb51d641ff5863", 1769670760) == (
        "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4="
    )


class _Reader:
    """Independent H.264 RBSP reader (spec 7.3) used to check the bitstream a decoder would see."""

    def __init__(self, nal: bytes) -> None:
        rbsp, zeros = bytearray(), 0
        for byte in nal:
            if zeros >= 2 and byte == 3:
                zeros = 0
                continue
            rbsp.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        self.data, self.pos = bytes(rbsp), 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | (self.data[self.pos // 8] >> (7 - self.pos % 8)) & 1
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def stop_bit_then_end(self) -> bool:
        if self.u(1) != 1:
            return False
        while self.pos % 8:
            if self.u(1):
                return False
        return self.pos == len(self.data) * 8


def _sps_size(sps: bytes) -> tuple[int, int]:
    r = _Reader(sps[1:])
    assert (r.u(8), r.u(8), r.u(8)) == (66, 0, 30)
    assert [r.ue() for _ in range(5)] == [0, 0, 0, 0, 0]  # ids, frame_num, poc type 0, poc lsb, refs
    assert r.u(1) == 0
    mb_w, mb_h = r.ue() + 1, r.ue() + 1
    assert r.u(1) == 1 and r.u(1) == 0  # frames only, no direct 8x8
    crop = [r.ue() for _ in range(4)] if r.u(1) else [0, 0, 0, 0]
    assert r.u(1) == 0 and r.stop_bit_then_end()
    return mb_w * 16 - 2 * (crop[0] + crop[1]), mb_h * 16 - 2 * (crop[2] + crop[3])


@pytest.mark.parametrize(("width", "height"), [(114, 64), (64, 86), (64, 64)])
def test_h264_stream_parses_as_ipcm_idr_frames(width, height):
    data = make_mp4(width, height, 3, seed=5)
    avcc_at = data.index(b"avcC") + 4
    sps_len = struct.unpack(">H", data[avcc_at + 6 : avcc_at + 8])[0]
    sps = data[avcc_at + 8 : avcc_at + 8 + sps_len]
    assert _sps_size(sps) == (width, height)
    mb_count = -(-width // 16) * -(-height // 16)
    mdat = [b for b in boxes(data) if b[0] == b"mdat"][0]
    pos, lumas = mdat[1], []
    while pos < mdat[2]:
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        nal = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        assert nal[0] & 0x80 == 0 and nal[0] & 0x1F == 5 and nal[0] >> 5 == 3
        r = _Reader(nal[1:])
        assert (r.ue(), r.ue(), r.ue(), r.u(4)) == (0, 7, 0, 0)  # first mb, I slice, pps 0, frame_num
        r.ue()  # idr_pic_id
        assert r.u(4) == 0 and r.u(1) == 0 and r.u(1) == 0  # poc lsb, dec_ref_pic_marking
        assert r.ue() == 0  # slice_qp_delta
        for _ in range(mb_count):
            assert r.ue() == 25  # I_PCM
            while r.pos % 8:
                assert r.u(1) == 0
            samples = r.data[r.pos // 8 : r.pos // 8 + 384]
            assert len(samples) == 384 and len(set(samples[:256])) == 1
            lumas.append(samples[0])
            r.pos += 384 * 8
        assert r.stop_bit_then_end()
    assert len(lumas) == 3 * mb_count
