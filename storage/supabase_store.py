"""Supabase Storage as a `MediaStore`, through the official client (storage3, part of `supabase`).

We talk to storage3's `AsyncStorageClient` directly rather than `supabase.acreate_client`: the
full client also builds auth/postgrest/realtime clients we never use here, while the storage
client is the same code the full client delegates to.

Memory: storage3's upload takes bytes, so `put` buffers the incoming chunks — but never past
`max_bytes` (or the store's `default_max_bytes` when the caller gives none); the streaming
guarantee of `LocalMediaStore` becomes "memory is bounded by the cap" here.

Secrets: the service-role key lives only in request headers. It is never part of a repr, a log
line or an exception: storage3/httpx errors are rewrapped as `MediaStoreError` carrying the
status and server message only, with any echo of the key scrubbed out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import httpx
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException

from storage.media import (
    MediaNotFoundError,
    MediaStoreError,
    MediaTooLargeError,
    StoredObject,
    validate_object_path,
)

__all__ = ["SupabaseMediaStore"]

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
_DEFAULT_MAX_BYTES = 200 * 1024 * 1024


def _default_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)


def _status_of(exc: StorageApiError) -> int | None:
    try:
        return int(exc.status)
    except (TypeError, ValueError):
        return None


class SupabaseMediaStore:
    """Media in a Supabase Storage bucket (default `generations`, as in the origin project).

    `client_factory` returns the `httpx.AsyncClient` used for every request (tests and callers
    use it for timeouts/transports); the store owns and closes it in `aclose()`.
    """

    def __init__(
        self,
        url: str,
        service_role_key: str,
        bucket: str = "generations",
        *,
        public: bool = True,
        signed_url_ttl: int = 3600,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        default_max_bytes: int = _DEFAULT_MAX_BYTES,
    ) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError("url must be the Supabase project URL (http:// or https://)")
        if not service_role_key:
            raise ValueError("service_role_key must not be empty")
        if not bucket or "/" in bucket:
            raise ValueError("bucket must be a non-empty name without '/'")
        if signed_url_ttl < 1:
            raise ValueError("signed_url_ttl must be at least 1 second")
        self._storage_url = url.rstrip("/") + "/storage/v1/"
        self._key = service_role_key
        self.bucket = bucket
        self.public = public
        self.signed_url_ttl = signed_url_ttl
        self.default_max_bytes = default_max_bytes
        self._client_factory = client_factory or _default_http_client
        self._http: httpx.AsyncClient | None = None
        self._storage: AsyncStorageClient | None = None
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"SupabaseMediaStore(url={self._storage_url!r}, bucket={self.bucket!r}, "
            f"public={self.public!r}, key=<redacted>)"
        )

    # ---- client plumbing -------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"apikey": self._key, "Authorization": f"Bearer {self._key}"}

    def _client(self) -> AsyncStorageClient:
        if self._storage is None:
            self._http = self._client_factory()
            self._storage = AsyncStorageClient(self._storage_url, self._headers(), http_client=self._http)
        return self._storage

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._storage = None

    async def __aenter__(self) -> SupabaseMediaStore:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "<redacted>") if self._key else text

    def _wrap(self, op: str, path: str | None, exc: BaseException) -> MediaStoreError:
        """Turn a storage3/httpx failure into our error, with no headers and no key."""
        where = f" {path}" if path else ""
        if isinstance(exc, StorageApiError):
            status = _status_of(exc)
            message = self._scrub(f"supabase storage {op}{where} failed: {exc.status} {exc.code}: {exc.message}")
            retryable = status is None or status >= 500 or status == 429
            return MediaStoreError(message, retryable=retryable)
        if isinstance(exc, httpx.TimeoutException):
            return MediaStoreError(f"supabase storage {op}{where} timed out", retryable=True)
        if isinstance(exc, httpx.TransportError):
            return MediaStoreError(
                f"supabase storage {op}{where} failed: {type(exc).__name__}", retryable=True
            )
        return MediaStoreError(self._scrub(f"supabase storage {op}{where} failed: {type(exc).__name__}: {exc}"))

    @staticmethod
    def _is_not_found(exc: BaseException) -> bool:
        if not isinstance(exc, StorageApiError):
            return False
        code, message = str(exc.code).lower(), str(exc.message).lower()
        return (
            _status_of(exc) == 404
            or code in {"not_found", "nosuchkey", "nosuchbucket", "bucket not found"}
            or message in {"bucket not found", "object not found"}
        )

    # ---- bucket ----------------------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (once per store; safe against a racing creator)."""
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if self._bucket_ready:
                return
            client = self._client()
            try:
                existing = await client.get_bucket(self.bucket)
            except (StorageException, httpx.HTTPError, ValueError) as exc:
                if not self._is_not_found(exc):
                    raise self._wrap("get bucket", self.bucket, exc) from None
                existing = None
            if existing is None:
                try:
                    await client.create_bucket(self.bucket, options={"public": self.public})
                    log.info("created storage bucket %s (public=%s)", self.bucket, self.public)
                except StorageApiError as exc:
                    # Another process created it between our get and create: that is success.
                    if _status_of(exc) != 409 and "duplicate" not in str(exc.code).lower():
                        raise self._wrap("create bucket", self.bucket, exc) from None
                except (StorageException, httpx.HTTPError, ValueError) as exc:
                    raise self._wrap("create bucket", self.bucket, exc) from None
            elif existing.public != self.public:
                log.warning(
                    "storage bucket %s has public=%s but the store is configured public=%s; "
                    "leaving the bucket as it is",
                    self.bucket,
                    existing.public,
                    self.public,
                )
            self._bucket_ready = True

    # ---- objects ---------------------------------------------------------------------------

    def _object_url(self, *parts: str, path: str) -> str:
        return self._storage_url + "/".join((*parts, quote(self.bucket, safe=""), quote(path, safe="/")))

    def url(self, path: str) -> str:
        """The public URL of `path`. A private bucket has none: use `await share_url(path)`."""
        validate_object_path(path)
        if not self.public:
            raise MediaStoreError(
                f"bucket {self.bucket!r} is private; it has no permanent URL (use share_url)"
            )
        return self._object_url("object", "public", path=path)

    async def share_url(self, path: str) -> str:
        """Public URL, or for a private bucket a signed URL valid for `signed_url_ttl` seconds."""
        if self.public:
            return self.url(path)
        return await self.signed_url(path)

    async def signed_url(self, path: str, ttl: int | None = None) -> str:
        validate_object_path(path)
        expires_in = self.signed_url_ttl if ttl is None else ttl
        try:
            result = await self._client().from_(self.bucket).create_signed_url(path, expires_in)
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            if self._is_not_found(exc):
                raise MediaNotFoundError(path) from None
            raise self._wrap("sign", path, exc) from None
        signed = result.get("signedURL")
        if not signed:
            raise MediaStoreError(f"supabase storage sign {path} returned no URL")
        return signed

    async def put(
        self,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject:
        validate_object_path(path)
        limit = self.default_max_bytes if max_bytes is None else max_bytes
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_bytes must be a non-negative int or None, got {max_bytes!r}")
        buffer = bytearray()
        async for chunk in chunks:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise MediaStoreError(f"chunks must be bytes, got {type(chunk).__name__}")
            if len(buffer) + len(chunk) > limit:
                raise MediaTooLargeError(limit)
            buffer += chunk
        await self.ensure_bucket()
        data = bytes(buffer)
        del buffer
        try:
            await self._client().from_(self.bucket).upload(
                path,
                data,
                {"content-type": content_type, "upsert": "true", "cache-control": "3600"},
            )
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            raise self._wrap("upload", path, exc) from None
        url = await self.share_url(path)
        return StoredObject(path=path, url=url, size=len(data), content_type=content_type)

    async def read(self, path: str) -> bytes:
        validate_object_path(path)
        try:
            return await self._client().from_(self.bucket).download(path)
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            if self._is_not_found(exc):
                raise MediaNotFoundError(path) from None
            raise self._wrap("download", path, exc) from None

    async def open_stream(self, path: str, *, chunk_size: int = _READ_CHUNK) -> AsyncIterator[bytes]:
        """Stream an object; storage3 only downloads whole bodies, so this uses its HTTP client.

        Same endpoint and headers as storage3's `download` (GET object/{bucket}/{path}).
        """
        validate_object_path(path)
        self._client()
        assert self._http is not None
        request = self._http.build_request("GET", self._object_url("object", path=path), headers=self._headers())
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._wrap("download", path, exc) from None
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            raise self._stream_error(path, response.status_code, body)
        return self._iterate(response, chunk_size)

    def _stream_error(self, path: str, http_status: int, body: bytes) -> MediaStoreError:
        try:
            parsed = json.loads(body)
            exc = StorageApiError(str(parsed["message"]), str(parsed["error"]), parsed["statusCode"])
        except (ValueError, KeyError, TypeError):
            exc = StorageApiError(f"HTTP {http_status}", "InternalError", http_status)
        if self._is_not_found(exc):
            return MediaNotFoundError(path)
        return self._wrap("download", path, exc)

    async def _iterate(self, response: httpx.Response, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise self._wrap("download", None, exc) from None
        finally:
            await response.aclose()

    async def _info(self, op: str, path: str) -> dict | None:
        validate_object_path(path)
        try:
            return await self._client().from_(self.bucket).info(path)
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            if self._is_not_found(exc):
                return None
            raise self._wrap(op, path, exc) from None

    async def exists(self, path: str) -> bool:
        return await self._info("exists", path) is not None

    async def size(self, path: str) -> int:
        info = await self._info("info", path)
        if info is None:
            raise MediaNotFoundError(path)
        size = info.get("size")
        if size is None:
            size = (info.get("metadata") or {}).get("size")
        if not isinstance(size, int):
            raise MediaStoreError(f"supabase storage info {path} has no size")
        return size

    async def probe(self) -> None:
        """Readiness: Storage answers and the key may read the bucket (one small GET; writes
        themselves are not tried, so a probe leaves nothing behind)."""
        try:
            await self._client().get_bucket(self.bucket)
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            raise self._wrap("get bucket", self.bucket, exc) from None

    async def delete(self, path: str) -> bool:
        validate_object_path(path)
        try:
            removed = await self._client().from_(self.bucket).remove([path])
        except (StorageException, httpx.HTTPError, ValueError) as exc:
            if self._is_not_found(exc):
                return False
            raise self._wrap("delete", path, exc) from None
        return bool(removed)
