"""What the fake server remembers: users and their private chats, messages, files, queries, payments."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")

# file_id prefixes resemble Telegram's so logs look familiar; the rest is opaque.
_PREFIX = {"photo": "AgAC", "video": "BAAC", "document": "BQAC", "animation": "CgAC", "sticker": "CAAC",
           "voice": "AwAC", "audio": "CQAC"}


@dataclass
class UserInfo:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        return user

    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                chat[key] = getattr(self, key)
        return chat


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes | None = field(default=None, repr=False)
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    url: str | None = None
    path: str | None = None

    @property
    def size(self) -> int | None:
        return None if self.data is None else len(self.data)


class FileStore:
    """Every file the bot or a user sent, by file_id and by download path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def add(self, kind: str, data: bytes | None, **meta: Any) -> StoredFile:
        n = next(self._counter)
        file_id = f"{_PREFIX.get(kind, 'BQAC')}fake{n}_{secrets.token_hex(6)}"
        path = None
        if data is not None:
            ext = _extension(meta.get("file_name"), meta.get("mime_type"), kind)
            path = f"{kind}s/file_{n}{ext}"
        stored = StoredFile(file_id, f"AQAD{n}{secrets.token_hex(3)}", kind, data, path=path, **meta)
        self._by_id[file_id] = stored
        if path:
            self._by_path[path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def photo_sizes(self, original: StoredFile) -> list[dict[str, Any]]:
        """PhotoSize list, smallest first. Smaller sizes share the original bytes (no resizing)."""
        width, height = original.width or 0, original.height or 0
        sizes = []
        for side in (90, 320):
            if max(width, height) > side:
                scale = side / max(width, height)
                w, h = max(1, round(width * scale)), max(1, round(height * scale))
                small = self.add("photo", original.data, width=w, height=h, mime_type=original.mime_type,
                                 url=original.url)
                sizes.append(photo_size(small))
        sizes.append(photo_size(original))
        return sizes


def photo_size(f: StoredFile) -> dict[str, Any]:
    size = {"file_id": f.file_id, "file_unique_id": f.file_unique_id, "width": f.width or 0, "height": f.height or 0}
    if f.size is not None:
        size["file_size"] = f.size
    return size


def file_object(f: StoredFile) -> dict[str, Any]:
    """Video / Document / Animation / Sticker / Voice / Audio JSON for a stored file."""
    obj: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
    if f.kind in ("video", "animation", "sticker"):
        obj["width"], obj["height"] = f.width or 0, f.height or 0
    if f.kind in ("video", "animation", "voice", "audio"):
        obj["duration"] = f.duration or 0
    if f.kind == "sticker":
        obj.update(type="regular", is_animated=False, is_video=False)
    if f.file_name and f.kind != "sticker":
        obj["file_name"] = f.file_name
    if f.mime_type and f.kind != "sticker":
        obj["mime_type"] = f.mime_type
    if f.size is not None:
        obj["file_size"] = f.size
    return obj


def _extension(file_name: str | None, mime: str | None, kind: str) -> str:
    if file_name and "." in file_name:
        return "." + file_name.rsplit(".", 1)[1][:8]
    by_mime = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "video/mp4": ".mp4",
               "image/gif": ".gif", "audio/ogg": ".oga", "audio/mpeg": ".mp3"}
    if mime in by_mime:
        return by_mime[mime]
    return {"photo": ".jpg", "video": ".mp4", "animation": ".mp4", "sticker": ".webp"}.get(kind, "")


@dataclass
class ChatMessage:
    """One message in a chat as it currently is (edits applied)."""

    message: dict[str, Any]
    outgoing: bool
    files: list[StoredFile] = field(default_factory=list)
    deleted: bool = False
    invoice: dict[str, Any] | None = None  # the sendInvoice parameters, for paying it

    @property
    def message_id(self) -> int:
        return self.message["message_id"]


@dataclass
class Chat:
    user: UserInfo
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    blocked: bool = False
    actions: list[str] = field(default_factory=list)
    _next_id: int = 1

    @property
    def id(self) -> int:
        return self.user.id

    def next_message_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def live(self) -> list[ChatMessage]:
        return [m for m in self.messages.values() if not m.deleted]


@dataclass
class CallbackQueryRecord:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: dict[str, Any] | None = None


@dataclass
class PreCheckoutRecord:
    id: str
    user_id: int
    invoice: dict[str, Any]
    created: float
    answer: dict[str, Any] | None = None


@dataclass
class Payment:
    charge_id: str
    user_id: int
    amount: int
    payload: str
    date: int
    refunded: bool = False


class Notifier:
    """Wakes waiters whenever the fake's state changes, so tests wait for conditions, not time."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._event
            value = check()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"timed out after {timeout}s waiting for {what}")
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass


async def resolve(value: T | Awaitable[T]) -> T:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value  # type: ignore[no-any-return]
    return value  # type: ignore[return-value]
