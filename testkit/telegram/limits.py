"""Telegram's documented limits on text, buttons, invoices and uploads, checked per call.

Lengths are counted with len() of the Python str (code points). Telegram counts characters after
entity parsing (and clients count UTF-16 units); code points are the simple, documented middle.

Error texts are the official ones where known (IMAGE_PROCESS_FAILED, PHOTO_INVALID_DIMENSIONS,
BUTTON_DATA_INVALID, "file is too big", "Request Entity Too Large"); elsewhere the fake adds the
parameter name and the numbers, which the official server does not.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import ApiError, bad_request
from .spec import Upload

MB = 1 << 20
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
MAX_PHOTO_BYTES = 10 * MB
MAX_UPLOAD_BYTES = 50 * MB
MAX_DOWNLOAD_BYTES = 20 * MB
MAX_PHOTO_SIDES = 10000
MAX_PHOTO_RATIO = 20


def check_text(text: str, name: str = "text") -> None:
    stripped = text.strip()
    if not stripped:
        raise bad_request(f"message text is empty ({name})")
    if len(stripped) > MAX_TEXT:
        raise bad_request(f"message is too long ({name}: {len(stripped)} characters, max {MAX_TEXT})")


def check_caption(caption: str | None, name: str = "caption") -> None:
    if caption is not None and len(caption.strip()) > MAX_CAPTION:
        raise bad_request(
            f"message caption is too long ({name}: {len(caption.strip())} characters, max {MAX_CAPTION})"
        )


def check_reply_markup(markup: Any) -> None:
    """callback_data must be 1-64 bytes; the official error is BUTTON_DATA_INVALID."""
    if not isinstance(markup, dict):
        return
    for r, row in enumerate(markup.get("inline_keyboard") or []):
        for c, button in enumerate(row):
            data = button.get("callback_data")
            if data is None:
                continue
            size = len(data.encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_DATA:
                raise bad_request(
                    f"BUTTON_DATA_INVALID: reply_markup.inline_keyboard[{r}][{c}].callback_data "
                    f"is {size} bytes, must be 1-{MAX_CALLBACK_DATA}"
                )


def check_callback_answer(text: str | None) -> None:
    if text is not None and len(text) > MAX_CALLBACK_ANSWER:
        raise bad_request(f"MESSAGE_TOO_LONG: text is {len(text)} characters, max {MAX_CALLBACK_ANSWER}")


def check_invoice(params: dict[str, Any]) -> None:
    title, description, payload = params["title"], params["description"], params["payload"]
    if not 1 <= len(title) <= 32:
        raise bad_request(f"INVOICE_TITLE_INVALID: title must be 1-32 characters, got {len(title)}")
    if not 1 <= len(description) <= 255:
        raise bad_request(
            f"INVOICE_DESCRIPTION_INVALID: description must be 1-255 characters, got {len(description)}"
        )
    size = len(payload.encode("utf-8"))
    if not 1 <= size <= 128:
        raise bad_request(f"INVOICE_PAYLOAD_INVALID: payload must be 1-128 bytes, got {size}")
    prices = params["prices"]
    if not prices:
        raise bad_request("prices must not be empty")
    for i, price in enumerate(prices):
        if price["amount"] <= 0 and params["currency"] == "XTR":
            raise bad_request(f"prices[{i}].amount must be positive")
    if params["currency"] == "XTR":
        if len(prices) != 1:
            raise bad_request(f"STARS_INVOICE_INVALID: XTR invoices need exactly one price, got {len(prices)}")
        if params.get("provider_token"):
            raise bad_request("provider_token must be empty for payments in Telegram Stars")
    elif not params.get("provider_token"):
        # Stricter than Telegram's wording, same effect: this bot sells digital goods for Stars only.
        raise bad_request("PAYMENT_PROVIDER_INVALID: only XTR invoices may omit provider_token")
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        first = markup["inline_keyboard"][0][0] if markup["inline_keyboard"][0] else {}
        if not first.get("pay"):
            raise bad_request("REPLY_MARKUP_BUY_EMPTY: the first button of an invoice must be a pay button")


def check_upload_size(upload: Upload, name: str) -> None:
    if upload.size > MAX_UPLOAD_BYTES:
        raise ApiError(413, "Request Entity Too Large")


def check_photo(upload: Upload, name: str = "photo") -> tuple[int, int]:
    """Photo uploads: ≤ 10 MB, readable PNG/JPEG/WebP/GIF, width+height ≤ 10000, ratio ≤ 20."""
    if upload.size > MAX_PHOTO_BYTES:
        raise bad_request(f"PHOTO_SAVE_FILE_INVALID: {name} is {upload.size} bytes, max {MAX_PHOTO_BYTES} for photos")
    size = image_size(upload.data)
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width <= 0 or height <= 0 or width + height > MAX_PHOTO_SIDES:
        raise bad_request(f"PHOTO_INVALID_DIMENSIONS: {name} is {width}x{height}, width + height must be ≤ 10000")
    if max(width, height) / min(width, height) > MAX_PHOTO_RATIO:
        raise bad_request(f"PHOTO_INVALID_DIMENSIONS: {name} is {width}x{height}, ratio must be ≤ 20")
    return width, height


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, JPEG, GIF or WebP header; None when unreadable."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None
