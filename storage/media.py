"""Media stores: where generated pictures and clips (and users' source photos) are kept.

Two implementations share the `MediaStore` protocol:

* `LocalMediaStore` — a folder on disk, served by the bot's own server at `/media/{path}`.
  `put` streams to a temp file next to the target, enforces the size cap while streaming,
  fsyncs and renames atomically, so a reader never sees half a file and memory stays bounded
  by one write buffer whatever the file size.
* `SupabaseMediaStore` (storage/supabase_store.py) — Supabase Storage, bucket `generations`.

Object paths follow the origin project's layout (`media_path`) with a random part added, so a
name cannot be guessed from ids and times; every path handed to a store is checked by
`validate_object_path` so user-derived parts can never climb out of the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

__all__ = [
    "ALLOWED_EXTENSIONS",
    "LocalMediaStore",
    "MediaNotFoundError",
    "MediaStore",
    "MediaStoreError",
    "MediaTooLargeError",
    "StoredObject",
    "UnsafePathError",
    "extension_for",
    "input_path",
    "media_path",
    "new_token",
    "validate_object_path",
]

ALLOWED_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "mp4", "mov", "webm", "gif", "bin",
                                "ogg", "oga", "mp3", "m4a", "wav", "aac"})  # audio: voice inputs

_CONTENT_TYPE_EXT = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/aac": "aac",
}

# One path segment: what ids, kinds and file names may look like. Deliberately narrow — no
# dots at the start (hidden files, "..") and nothing a shell, URL or filesystem treats specially.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_ID_PART = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Writes are batched to this size before each hop to a worker thread: large enough that the
# thread hop is cheap relative to the IO, small enough to bound memory per upload.
_WRITE_BUFFER = 1024 * 1024
_READ_CHUNK = 256 * 1024


class MediaStoreError(Exception):
    """A media store operation failed. `retryable` hints whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class MediaTooLargeError(MediaStoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"media exceeds the size limit of {limit} bytes")
        self.limit = limit


class MediaNotFoundError(MediaStoreError):
    def __init__(self, path: str) -> None:
        super().__init__(f"media not found: {path}")
        self.path = path


class UnsafePathError(MediaStoreError, ValueError):
    """A path or path part that could escape the store or is not in the allowed shape."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    path: str
    url: str
    size: int
    content_type: str


@runtime_checkable
class MediaStore(Protocol):
    async def put(
        self,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject: ...

    async def read(self, path: str) -> bytes: ...

    async def open_stream(self, path: str) -> AsyncIterator[bytes]:
        """Await to open (raises MediaNotFoundError now), then iterate the chunks."""
        ...

    def url(self, path: str) -> str: ...

    async def share_url(self, path: str) -> str:
        """A URL anyone can fetch right now (public URL, or a fresh signed one)."""
        ...

    async def exists(self, path: str) -> bool: ...

    async def size(self, path: str) -> int: ...

    async def delete(self, path: str) -> bool: ...


def _id_part(name: str, value: object) -> str:
    if isinstance(value, Enum):  # str(StrEnum member) would give "Kind.IMAGE", not "image"
        value = value.value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UnsafePathError(f"{name} must be an int or str, got {type(value).__name__}")
    text = str(value)
    if not _ID_PART.match(text):
        raise UnsafePathError(f"{name} {text!r} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")
    return text


def _ext(ext: str) -> str:
    if not isinstance(ext, str):
        raise UnsafePathError(f"ext must be a str, got {type(ext).__name__}")
    clean = ext.lower().removeprefix(".")
    if clean not in ALLOWED_EXTENSIONS:
        allowed = ", ".join(sorted(ALLOWED_EXTENSIONS))
        raise UnsafePathError(f"extension {ext!r} is not allowed (allowed: {allowed})")
    return clean


def _timestamp(value: int | float | datetime) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UnsafePathError("timestamp datetime must be timezone-aware")
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnsafePathError(f"timestamp must be an int, float or datetime, got {value!r}")
    if value < 0:
        raise UnsafePathError(f"timestamp must not be negative, got {value!r}")
    return int(value)


def new_token() -> str:
    """The unguessable part of a new object name: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def media_path(
    user_id: int | str,
    kind: str,
    generation_id: int | str,
    index: int,
    timestamp: int | float | datetime,
    ext: str,
    *,
    token: str | None = None,
) -> str:
    """`{user_id}/{kind}/{generation_id}_{index}_{timestamp}_{token}.{ext}` — the origin's bucket
    layout plus a random `token` (a fresh `new_token()` unless given), so knowing a user id and a
    generation id is not enough to fetch someone's result from a public bucket or `/media`.
    `token=""` gives the name without it, as objects stored before were named (their paths are
    kept in `generations.stored_paths`, so they are still found)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise UnsafePathError(f"index must be a non-negative int, got {index!r}")
    return (
        f"{_id_part('user_id', user_id)}/{_id_part('kind', kind)}/"
        f"{_id_part('generation_id', generation_id)}_{index}_{_timestamp(timestamp)}"
        f"{_token_suffix(token)}.{_ext(ext)}"
    )


def input_path(user_id: int | str, generation_id: int | str, ext: str, *,
               token: str | None = None) -> str:
    """`{user_id}/input/{generation_id}_{token}.{ext}` — a user's uploaded source photo, with a
    random `token` as in `media_path` (`token=""`: the name without it)."""
    return (f"{_id_part('user_id', user_id)}/input/{_id_part('generation_id', generation_id)}"
            f"{_token_suffix(token)}.{_ext(ext)}")


def _token_suffix(token: str | None) -> str:
    if token is None:
        token = new_token()
    if token == "":
        return ""
    return "_" + _id_part("token", token)


def extension_for(content_type: str | None, url: str | None = None) -> str:
    """Pick a storage extension from a content type, else from a URL's suffix, else `bin`."""
    if content_type:
        found = _CONTENT_TYPE_EXT.get(content_type.split(";", 1)[0].strip().lower())
        if found:
            return found
    if url:
        name = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
        if "." in name:
            suffix = name.rsplit(".", 1)[1].lower()
            if suffix in ALLOWED_EXTENSIONS:
                return suffix
    return "bin"


def validate_object_path(path: str) -> str:
    """Return `path` if it is a safe relative object key, else raise UnsafePathError."""
    if not isinstance(path, str):
        raise UnsafePathError(f"path must be a str, got {type(path).__name__}")
    if not path or len(path) > 1024:
        raise UnsafePathError("path must be 1-1024 characters")
    if path.startswith("/") or "\\" in path or "\x00" in path or re.match(r"^[A-Za-z]:", path):
        raise UnsafePathError(f"path {path!r} must be relative, with '/' separators")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise UnsafePathError(f"path {path!r} has an unsafe segment {segment!r}")
    return path


def _check_limit(max_bytes: int | None) -> None:
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
        raise ValueError(f"max_bytes must be a non-negative int or None, got {max_bytes!r}")


class LocalMediaStore:
    """Media in a folder; `url(path)` points at the bot server's `/media/{path}` route."""

    def __init__(self, root: Path | str, base_url: str) -> None:
        self._root = Path(root).resolve()
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"LocalMediaStore(root={str(self._root)!r}, base_url={self._base_url!r})"

    @property
    def root(self) -> Path:
        return self._root

    def file_path(self, path: str) -> Path:
        """The file behind `path`, proven to stay under root (symlinks resolved).

        For the server's `/media/{path}` route, which hands the file to aiohttp's FileResponse.
        """
        validate_object_path(path)
        candidate = (self._root / path).resolve()
        if not candidate.is_relative_to(self._root):
            raise UnsafePathError(f"path {path!r} resolves outside the media root")
        return candidate

    def url(self, path: str) -> str:
        return f"{self._base_url}/media/{quote(validate_object_path(path), safe='/')}"

    async def share_url(self, path: str) -> str:
        return self.url(path)

    async def put(
        self,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject:
        _check_limit(max_bytes)
        validate_object_path(path)
        # The file is opened when the first full buffer is written: a result smaller than
        # _WRITE_BUFFER (most pictures) is opened, written, synced and renamed in ONE hop to
        # the worker thread instead of three (each hop costs the loop a handoff).
        opened: tuple[Path, Path, Any] | None = None
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise MediaStoreError(f"chunks must be bytes, got {type(chunk).__name__}")
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise MediaTooLargeError(max_bytes)
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    if opened is None:
                        opened = await asyncio.to_thread(self._open_part, path)
                    await asyncio.to_thread(opened[2].write, bytes(buffer))
                    buffer.clear()
            if opened is None:
                await asyncio.to_thread(self._write_whole, path, bytes(buffer))
            else:
                await asyncio.to_thread(self._finish, opened[2], bytes(buffer), *opened[:2])
        except BaseException:
            # Covers overflow, a failing source iterator and task cancellation alike: the temp
            # file must not outlive the attempt.
            if opened is not None:
                await asyncio.shield(asyncio.to_thread(self._discard, opened[2], opened[0]))
            raise
        return StoredObject(path=path, url=self.url(path), size=size, content_type=content_type)

    def _open_part(self, path: str) -> tuple[Path, Path, Any]:
        """(temp path, target path, handle): a new .part file beside the target."""
        target = self._prepare_parent(path)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        return temp, target, open(temp, "xb")

    def _write_whole(self, path: str, data: bytes) -> None:
        temp, target, handle = self._open_part(path)
        try:
            self._finish(handle, data, temp, target)
        except BaseException:
            self._discard(handle, temp)
            raise

    def _prepare_parent(self, path: str) -> Path:
        target = self.file_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # mkdir may have walked through a symlink created meanwhile; check the real location.
        if not target.parent.resolve().is_relative_to(self._root):
            raise UnsafePathError(f"path {path!r} resolves outside the media root")
        if target.is_dir():
            raise MediaStoreError(f"path {path!r} is a folder")
        return target

    @staticmethod
    def _finish(handle, tail: bytes, temp: Path, target: Path) -> None:
        if tail:
            handle.write(tail)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, target)
        # Make the rename itself durable, so a crash cannot leave the old (or no) file.
        with contextlib.suppress(OSError):
            fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @staticmethod
    def _discard(handle, temp: Path) -> None:
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()

    # Path resolution stats the filesystem, so it runs in the worker thread with the IO itself.

    def _read_file(self, path: str) -> bytes:
        try:
            return self.file_path(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MediaNotFoundError(path) from None

    async def read(self, path: str) -> bytes:
        validate_object_path(path)
        return await asyncio.to_thread(self._read_file, path)

    def _open_file(self, path: str):
        try:
            return open(self.file_path(path), "rb")  # noqa: SIM115 - closed by _iterate
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MediaNotFoundError(path) from None

    async def open_stream(self, path: str, *, chunk_size: int = _READ_CHUNK) -> AsyncIterator[bytes]:
        """Await to open the file (MediaNotFoundError surfaces here), then iterate its chunks."""
        validate_object_path(path)
        handle = await asyncio.to_thread(self._open_file, path)
        return self._iterate(handle, chunk_size)

    @staticmethod
    async def _iterate(handle, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def exists(self, path: str) -> bool:
        validate_object_path(path)
        return await asyncio.to_thread(lambda: self.file_path(path).is_file())

    def _size(self, path: str) -> int:
        try:
            return self.file_path(path).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise MediaNotFoundError(path) from None

    async def size(self, path: str) -> int:
        validate_object_path(path)
        return await asyncio.to_thread(self._size, path)

    def _delete(self, path: str) -> bool:
        try:
            self.file_path(path).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    async def delete(self, path: str) -> bool:
        validate_object_path(path)
        return await asyncio.to_thread(self._delete, path)

    def _probe(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        probe = self._root / f".probe-{uuid.uuid4().hex}"
        try:
            with open(probe, "xb") as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()

    async def probe(self) -> None:
        """Readiness: a small file is written, synced and removed at the root (a read-only or
        full disk, or a file in the folder's place, raises OSError)."""
        await asyncio.to_thread(self._probe)
