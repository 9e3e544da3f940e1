"""A minimal but genuine MP4: ftyp + moov (one avc1 video track) + mdat.

Each frame is an H.264 Baseline IDR slice made only of I_PCM macroblocks (raw samples), the trick
used by tiny "hello world" encoders: no transform or entropy coding is needed, yet any decoder can
play it. Sizes are coded in whole macroblocks and cropped to the exact even width/height.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .media import PAD_CHUNK


class _Bits:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def align_zero(self) -> None:
        while len(self.bits) % 8:
            self.bits.append(0)

    def trailing(self) -> None:
        self.bits.append(1)
        self.align_zero()

    def bytes(self) -> bytes:
        assert len(self.bits) % 8 == 0
        return bytes(
            int("".join(map(str, self.bits[i : i + 8])), 2) for i in range(0, len(self.bits), 8)
        )


def _escape(rbsp: bytes) -> bytes:
    """Emulation prevention: no 00 00 0x (x ≤ 3) may appear inside a NAL unit."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(mb_w: int, mb_h: int, crop_right: int, crop_bottom: int) -> bytes:
    b = _Bits()
    b.u(8, 66)  # profile_idc: Baseline
    b.u(8, 0)  # constraint flags
    b.u(8, 30)  # level_idc 3.0: generous for tiny frames
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(0)  # pic_order_cnt_type
    b.ue(0)  # log2_max_pic_order_cnt_lsb_minus4
    b.ue(0)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(mb_w - 1)
    b.ue(mb_h - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 0)  # direct_8x8_inference_flag
    cropped = bool(crop_right or crop_bottom)
    b.u(1, int(cropped))
    if cropped:
        for value in (0, crop_right, 0, crop_bottom):
            b.ue(value)
    b.u(1, 0)  # vui_parameters_present_flag
    b.trailing()
    return b"\x67" + _escape(b.bytes())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.ue(0)  # pic_init_qp_minus26 (se(0) has the same code)
    b.ue(0)  # pic_init_qs_minus26
    b.ue(0)  # chroma_qp_index_offset
    b.u(1, 0)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    b.trailing()
    return b"\x68" + _escape(b.bytes())


def _idr_slice(mb_count: int, idr_pic_id: int, luma: int, cb: int, cr: int) -> bytes:
    pcm = bytes([luma]) * 256 + bytes([cb]) * 64 + bytes([cr]) * 64
    out = bytearray()
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I (all slices of the picture)
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num
    b.ue(idr_pic_id)
    b.u(4, 0)  # pic_order_cnt_lsb
    b.u(1, 0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.ue(0)  # slice_qp_delta (se(0))
    for _ in range(mb_count):
        b.ue(25)  # mb_type I_PCM
        b.align_zero()  # pcm_alignment_zero_bit
        out += b.bytes() + pcm
        b = _Bits()
    b.trailing()
    out += b.bytes()
    return b"\x65" + _escape(bytes(out))


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _moov(width: int, height: int, sps: bytes, pps: bytes, sizes: list[int], frame_ms: int, mdat_offset: int) -> bytes:
    duration = frame_ms * len(sizes)
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, duration), struct.pack(">IH", 0x10000, 0x100),
                 bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2))
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8),
                 struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", width << 16, height << 16))
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, duration), struct.pack(">HH", 0x55C4, 0))
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = _full(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    avcc = _box(b"avcC", bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
                b"\x01", struct.pack(">H", len(pps)), pps)
    avc1 = _box(b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
                struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
                struct.pack(">Hh", 0x18, -1), avcc)
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full(b"stts", 0, 0, struct.pack(">III", 1, len(sizes), frame_ms)),
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        _full(b"stsz", 0, 0, struct.pack(">II", 0, len(sizes)), b"".join(struct.pack(">I", s) for s in sizes)),
        _full(b"stco", 0, 0, struct.pack(">II", 1, mdat_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


def make_mp4(width: int, height: int, duration_s: int = 5, seed: int = 0) -> bytes:
    """An MP4 of `duration_s` seconds at 1 frame per second; width and height must be even."""
    mb_w, mb_h = -(-width // 16), -(-height // 16)
    sps = _sps(mb_w, mb_h, (mb_w * 16 - width) // 2, (mb_h * 16 - height) // 2)
    pps = _pps()
    frames = []
    for i in range(max(duration_s, 1)):
        luma = 40 + (seed * 37 + i * 170 // max(duration_s, 1)) % 180  # never 0..3: keeps NALs unescaped
        nal = _idr_slice(mb_w * mb_h, i % 2, luma, 90 + i * 7 % 80, 160 - i * 5 % 80)
        frames.append(struct.pack(">I", len(nal)) + nal)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    sizes = [len(f) for f in frames]
    probe = _moov(width, height, sps, pps, sizes, 1000, 0)
    mdat_offset = len(ftyp) + len(probe) + 8
    moov = _moov(width, height, sps, pps, sizes, 1000, mdat_offset)
    return ftyp + moov + _box(b"mdat", *frames)


def padded_mp4(base: bytes, total: int) -> tuple[int, Iterator[bytes]]:
    """`base` followed by a `free` box so the file reaches about `total` bytes (streamed)."""
    pad = max(total - len(base) - 16, 0)

    def chunks() -> Iterator[bytes]:
        yield base + struct.pack(">I", 1) + b"free" + struct.pack(">Q", pad + 16)
        left = pad
        block = bytes(PAD_CHUNK)
        while left:
            piece = block[: min(left, PAD_CHUNK)]
            left -= len(piece)
            yield piece

    return len(base) + 16 + pad, chunks()
