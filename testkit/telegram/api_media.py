"""Bot-side methods that send or fetch files."""

from __future__ import annotations

import mimetypes
import secrets
from typing import TYPE_CHECKING, Any

from .errors import bad_request
from .api_messages import caption_content
from .limits import MAX_DOWNLOAD_BYTES, check_photo, check_reply_markup, image_size
from .spec import Upload
from .state import StoredFile, file_object

if TYPE_CHECKING:
    from .server import FakeTelegram

_DEFAULT_MIME = {"video": "video/mp4", "animation": "video/mp4", "sticker": "image/webp",
                 "document": "application/octet-stream", "photo": "image/jpeg"}


def resolve_input(fake: FakeTelegram, value: Any, kind: str, name: str, files: dict[str, Upload],
                  params: dict[str, Any] | None = None) -> StoredFile:
    """An upload, a file_id of a file we know, or a URL (kept as-is, no bytes) → a stored file."""
    params = params or {}
    if isinstance(value, str) and value.startswith("attach://"):
        part = files.get(value[len("attach://"):])
        if part is None:
            raise bad_request(f'{name} refers to a missing file part "{value}"')
        value = part
    if isinstance(value, Upload):
        return _store_upload(fake, value, kind, name, params)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{name}: wrong file identifier/HTTP URL specified")
    if value.startswith(("http://", "https://")):
        file_name = value.rsplit("/", 1)[-1].split("?")[0] or None
        width, height = (params.get("width"), params.get("height")) if kind != "photo" else (None, None)
        return fake.files.add(kind, None, url=value, file_name=file_name if kind == "document" else None,
                              width=width or 800, height=height or 800, duration=params.get("duration"),
                              mime_type=_DEFAULT_MIME.get(kind))
    stored = fake.files.get(value)
    if stored is None:
        raise bad_request(f"{name}: wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(f"{name}: can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}")
    return stored


def _store_upload(fake: FakeTelegram, upload: Upload, kind: str, name: str, params: dict[str, Any]) -> StoredFile:
    mime = upload.content_type if upload.content_type not in (None, "application/octet-stream") else None
    mime = mime or (mimetypes.guess_type(upload.filename or "")[0]) or _DEFAULT_MIME.get(kind)
    if kind == "photo":
        width, height = check_photo(upload, name)
        return fake.files.add("photo", upload.data, width=width, height=height, mime_type=mime)
    size = image_size(upload.data) if kind in ("sticker", "animation") else None
    width = params.get("width") or (size[0] if size else 1280 if kind == "video" else 512)
    height = params.get("height") or (size[1] if size else 720 if kind == "video" else 512)
    file_name = upload.filename or f"file.{(mime or 'bin').rsplit('/', 1)[-1]}"
    return fake.files.add(kind, upload.data, file_name=file_name, mime_type=mime, width=width, height=height,
                          duration=params.get("duration") or 0)


def media_content(fake: FakeTelegram, stored: StoredFile) -> dict[str, Any]:
    if stored.kind == "photo":
        return {"photo": fake.files.photo_sizes(stored)}
    if stored.kind == "animation":
        # Telegram puts an animation's file in both fields.
        return {"animation": file_object(stored), "document": file_object(stored)}
    return {stored.kind: file_object(stored)}


def _send_media(kind: str) -> Any:
    async def handler(fake: FakeTelegram, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        caption = caption_content(params)
        check_reply_markup(params.get("reply_markup"))
        chat = fake.chat(params["chat_id"], sending=True)
        stored = resolve_input(fake, params[kind], kind, kind, files, params)
        content = {**media_content(fake, stored), **{k: v for k, v in caption.items() if v is not None},
                   **fake.reply_to(chat, params)}
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            content["reply_markup"] = markup
        return fake.post_message(chat, content, outgoing=True, files=[stored]).message

    handler.__name__ = f"send_{kind}"
    return handler


async def send_media_group(fake: FakeTelegram, params: dict[str, Any], files: dict[str, Upload]) -> Any:
    media = params["media"]
    if not 2 <= len(media) <= 10:
        raise bad_request(f"media must include 2-10 items, got {len(media)}")
    kinds = {item["type"] for item in media}
    if ("document" in kinds or "audio" in kinds) and len(kinds) > 1:
        raise bad_request("documents and audio can be grouped only with items of the same type")
    chat = fake.chat(params["chat_id"], sending=True)
    reply = fake.reply_to(chat, params)
    resolved, captions = [], []
    for i, item in enumerate(media):
        captions.append(caption_content(item, f"media[{i}].caption"))
        resolved.append(resolve_input(fake, item["media"], item["type"], f"media[{i}].media", files, item))
    group_id = str(secrets.randbelow(10**17))
    messages = []
    for caption, stored in zip(captions, resolved):
        content = {"media_group_id": group_id, **media_content(fake, stored),
                   **{k: v for k, v in caption.items() if v is not None}, **reply}
        messages.append(fake.post_message(chat, content, outgoing=True, files=[stored]).message)
    return messages


async def get_file(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    stored = fake.files.get(params["file_id"])
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.size is not None and stored.size > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    result: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.size is not None:
        result["file_size"] = stored.size
    if stored.path:
        result["file_path"] = stored.path
    return result


HANDLERS = {
    "sendPhoto": _send_media("photo"),
    "sendVideo": _send_media("video"),
    "sendDocument": _send_media("document"),
    "sendAnimation": _send_media("animation"),
    "sendSticker": _send_media("sticker"),
    "sendMediaGroup": send_media_group,
    "getFile": get_file,
}
