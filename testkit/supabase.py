"""A local fake of Supabase Storage's REST API (the part storage3 2.x talks to), over real HTTP.

Request shapes follow the installed storage3 package (storage3/_async/bucket.py, file_api.py):

* `GET /storage/v1/bucket`, `GET /storage/v1/bucket/{id}`, `POST /storage/v1/bucket`
  (`{"id", "name", "public", ...}`), `PUT /storage/v1/bucket/{id}`.
* `POST /storage/v1/object/{bucket}/{path}` upload (multipart: `cacheControl` field and a `file`
  part carrying the content type; header `x-upsert: true` to overwrite, 409 otherwise);
  `PUT` of the same URL replaces an existing object.
* `GET /storage/v1/object/{bucket}/{path}` authenticated download;
  `GET /storage/v1/object/info/{bucket}/{path}` object info (storage3's `exists()` uses it);
  `DELETE /storage/v1/object/{bucket}` with `{"prefixes": [...]}`.
* `GET /storage/v1/object/public/{bucket}/{path}` (public buckets only, no auth).
* `POST /storage/v1/object/sign/{bucket}/{path}` with `{"expiresIn": "<seconds>"}` →
  `{"signedURL": "/object/sign/{bucket}/{path}?token=<jwt>"}`; `GET` of that URL, no auth.
  The token is an HS256 JWT whose payload carries `url` and `exp`, like the real one.

Errors use the real body shape `{"statusCode": "<code>", "error": ..., "message": ...}`. A missing
bucket answers HTTP 400 with statusCode "404" (what hosted Supabase has long done) so clients
must read the body, not just the HTTP status. Missing or wrong `Authorization: Bearer <key>` /
`apikey` headers answer 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

PREFIX = "/storage/v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_token_payload(token: str) -> dict:
    """Read a signed-URL token's payload (for tests checking `exp`)."""
    return json.loads(_unb64(token.split(".")[1]))


@dataclass
class FakeBucket:
    id: str
    name: str
    public: bool
    file_size_limit: int | None = None
    allowed_mime_types: list[str] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "owner": "",
            "public": self.public,
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class FakeObject:
    data: bytes
    content_type: str
    cache_control: str
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    id: str = field(default_factory=lambda: secrets.token_hex(8))


def _error(http_status: int, status_code: str, error: str, message: str) -> web.Response:
    return web.json_response(
        {"statusCode": status_code, "error": error, "message": message}, status=http_status
    )


def _not_found_object() -> web.Response:
    return _error(404, "404", "not_found", "Object not found")


def _not_found_bucket() -> web.Response:
    return _error(400, "404", "Bucket not found", "Bucket not found")


class FakeSupabaseStorage:
    """Start with `await start()`; `.url` is the project URL to give the client."""

    def __init__(
        self,
        service_key: str = "fake-service-role-key",
        *,
        clock: Callable[[], float] = time.time,
        leak_auth_in_errors: bool = False,
    ) -> None:
        self.service_key = service_key
        self.clock = clock
        # A hostile-server mode: echo the caller's credentials in error text, so tests can prove
        # the client scrubs them before they reach an exception.
        self.leak_auth_in_errors = leak_auth_in_errors
        self.buckets: dict[str, FakeBucket] = {}
        self.objects: dict[tuple[str, str], FakeObject] = {}
        self.requests: list[tuple[str, str]] = []
        self._jwt_secret = secrets.token_bytes(32)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._record], client_max_size=256 * 1024 * 1024)
        r = app.router
        r.add_get(PREFIX + "/bucket", self._list_buckets)
        r.add_post(PREFIX + "/bucket", self._create_bucket)
        r.add_get(PREFIX + "/bucket/{id}", self._get_bucket)
        r.add_put(PREFIX + "/bucket/{id}", self._update_bucket)
        # Specific object routes first: aiohttp matches in registration order.
        r.add_get(PREFIX + "/object/public/{bucket}/{path:.+}", self._public_download)
        r.add_post(PREFIX + "/object/sign/{bucket}/{path:.+}", self._sign)
        r.add_get(PREFIX + "/object/sign/{bucket}/{path:.+}", self._signed_download)
        r.add_get(PREFIX + "/object/info/{bucket}/{path:.+}", self._info)
        r.add_post(PREFIX + "/object/{bucket}/{path:.+}", self._upload)
        r.add_put(PREFIX + "/object/{bucket}/{path:.+}", self._update)
        r.add_get(PREFIX + "/object/{bucket}/{path:.+}", self._download)
        r.add_delete(PREFIX + "/object/{bucket}", self._remove)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSupabaseStorage:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    # ---- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler):
        self.requests.append((request.method, request.path))
        return await handler(request)

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        apikey = request.headers.get("apikey", "")
        if hmac.compare_digest(auth, f"Bearer {self.service_key}") and hmac.compare_digest(
            apikey, self.service_key
        ):
            return None
        message = "invalid signature"
        if self.leak_auth_in_errors:
            message += f" (Authorization: {auth}; apikey: {apikey})"
        return _error(401, "401", "Unauthorized", message)

    def _token(self, bucket: str, path: str, expires_in: int) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(
            json.dumps({"url": f"{bucket}/{path}", "exp": int(self.clock()) + expires_in}).encode()
        )
        sig = hmac.new(self._jwt_secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def _check_token(self, token: str, bucket: str, path: str) -> web.Response | None:
        try:
            header, payload, sig = token.split(".")
            expected = hmac.new(
                self._jwt_secret, f"{header}.{payload}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(_unb64(sig), expected):
                raise ValueError("bad signature")
            claims = json.loads(_unb64(payload))
        except ValueError:
            return _error(400, "400", "InvalidJWT", "invalid signature")
        if claims.get("url") != f"{bucket}/{path}":
            return _error(400, "400", "InvalidSignature", "The url do not match the signature")
        if claims.get("exp", 0) <= self.clock():
            return _error(400, "400", "InvalidJWT", '"exp" claim timestamp check failed')
        return None

    def _object_response(self, obj: FakeObject) -> web.Response:
        return web.Response(
            body=obj.data,
            headers={"Content-Type": obj.content_type, "Cache-Control": f"max-age={obj.cache_control}"},
        )

    # ---- buckets ---------------------------------------------------------------------------

    async def _list_buckets(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        return web.json_response([b.as_json() for b in self.buckets.values()])

    async def _get_bucket(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return _not_found_bucket()
        return web.json_response(bucket.as_json())

    async def _create_bucket(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        try:
            body = await request.json()
            bucket_id = body.get("id") or body["name"]
        except (ValueError, KeyError, AttributeError):
            return _error(400, "400", "Invalid request", "body must have name")
        if bucket_id in self.buckets:
            return _error(409, "409", "Duplicate", "The resource already exists")
        self.buckets[bucket_id] = FakeBucket(
            id=bucket_id,
            name=body.get("name") or bucket_id,
            public=bool(body.get("public", False)),
            file_size_limit=body.get("file_size_limit"),
            allowed_mime_types=body.get("allowed_mime_types"),
        )
        return web.json_response({"name": bucket_id})

    async def _update_bucket(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        bucket = self.buckets.get(request.match_info["id"])
        if bucket is None:
            return _not_found_bucket()
        body = await request.json()
        if "public" in body:
            bucket.public = bool(body["public"])
        return web.json_response({"message": "Successfully updated"})

    # ---- objects ---------------------------------------------------------------------------

    async def _read_upload(self, request: web.Request) -> tuple[bytes, str, str]:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            data, content_type, cache_control = b"", "application/octet-stream", "no-cache"
            while (part := await reader.next()) is not None:
                if part.name == "file":
                    data = await part.read()
                    content_type = part.headers.get("Content-Type", content_type)
                elif part.name == "cacheControl":
                    cache_control = await part.text()
            return data, content_type, cache_control
        return await request.read(), request.content_type, request.headers.get("cache-control", "no-cache")

    async def _store(self, request: web.Request, *, replace_only: bool) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        bucket_id, path = request.match_info["bucket"], request.match_info["path"]
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            return _not_found_bucket()
        key = (bucket_id, path)
        upsert = request.headers.get("x-upsert", "false").lower() == "true"
        if replace_only and key not in self.objects:
            return _not_found_object()
        if not replace_only and key in self.objects and not upsert:
            return _error(400, "409", "Duplicate", "The resource already exists")
        data, content_type, cache_control = await self._read_upload(request)
        if bucket.file_size_limit is not None and len(data) > bucket.file_size_limit:
            return _error(413, "413", "Payload too large", "The object exceeded the maximum allowed size")
        self.objects[key] = FakeObject(data=data, content_type=content_type, cache_control=cache_control)
        return web.json_response({"Id": self.objects[key].id, "Key": f"{bucket_id}/{path}"})

    async def _upload(self, request: web.Request) -> web.Response:
        return await self._store(request, replace_only=False)

    async def _update(self, request: web.Request) -> web.Response:
        return await self._store(request, replace_only=True)

    def _lookup(self, request: web.Request) -> FakeObject | web.Response:
        bucket_id, path = request.match_info["bucket"], request.match_info["path"]
        if bucket_id not in self.buckets:
            return _not_found_bucket()
        obj = self.objects.get((bucket_id, path))
        return obj if obj is not None else _not_found_object()

    async def _download(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        found = self._lookup(request)
        return found if isinstance(found, web.Response) else self._object_response(found)

    async def _info(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(
            {
                "id": found.id,
                "name": request.match_info["path"],
                "bucket_id": request.match_info["bucket"],
                "version": found.id,
                "size": len(found.data),
                "content_type": found.content_type,
                "cache_control": found.cache_control,
                "etag": f'"{hashlib.md5(found.data).hexdigest()}"',  # noqa: S324 - an etag, not security
                "metadata": {},
                "last_modified": found.created_at,
                "created_at": found.created_at,
            }
        )

    async def _public_download(self, request: web.Request) -> web.Response:
        bucket = self.buckets.get(request.match_info["bucket"])
        if bucket is None or not bucket.public:
            return _not_found_bucket()
        found = self._lookup(request)
        return found if isinstance(found, web.Response) else self._object_response(found)

    async def _sign(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        try:
            expires_in = int((await request.json())["expiresIn"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "400", "Invalid request", "expiresIn must be a number")
        if expires_in < 1:
            return _error(400, "400", "Invalid request", "expiresIn must be positive")
        bucket_id, path = request.match_info["bucket"], request.match_info["path"]
        token = self._token(bucket_id, path, expires_in)
        return web.json_response({"signedURL": f"/object/sign/{bucket_id}/{path}?token={token}"})

    async def _signed_download(self, request: web.Request) -> web.Response:
        bucket_id, path = request.match_info["bucket"], request.match_info["path"]
        token = request.query.get("token")
        if not token:
            return _error(400, "400", "InvalidJWT", "querystring must have required property 'token'")
        if rejected := self._check_token(token, bucket_id, path):
            return rejected
        found = self._lookup(request)
        return found if isinstance(found, web.Response) else self._object_response(found)

    async def _remove(self, request: web.Request) -> web.Response:
        if denied := self._unauthorized(request):
            return denied
        bucket_id = request.match_info["bucket"]
        if bucket_id not in self.buckets:
            return _not_found_bucket()
        body = await request.json()
        removed = []
        for prefix in body.get("prefixes", []):
            obj = self.objects.pop((bucket_id, prefix), None)
            if obj is not None:
                removed.append({"name": prefix, "bucket_id": bucket_id, "id": obj.id})
        return web.json_response(removed)
