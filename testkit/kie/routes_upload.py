"""Upload host routes: stream (multipart), base64 and URL uploads, KIE's per-endpoint shape."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import mimetypes
import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp import web

from .server import StoredFile

if TYPE_CHECKING:
    from .server import KieEmulator

ACCOUNT = "100000"  # stands in for the numeric account folder seen live ("kieai/183531/...")


class _UploadError(Exception):
    def __init__(self, msg: str, code: int = 400) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code


def _clean_path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip().strip("/"):
        raise _UploadError("Missing required parameter: uploadPath")
    parts = value.strip().strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _UploadError("Invalid uploadPath")
    return "/".join(parts)


def _clean_name(value: Any, mime_type: str) -> str:
    if value is None or value == "":
        return secrets.token_hex(8) + (mimetypes.guess_extension(mime_type) or ".bin")
    if not isinstance(value, str) or "/" in value or "\\" in value or value in (".", ".."):
        raise _UploadError("Invalid fileName")
    return value


def _guess_mime(name: str | None, fallback: str = "application/octet-stream") -> str:
    return (mimetypes.guess_type(name)[0] if name else None) or fallback


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def upload_routes(emu: KieEmulator) -> list[web.RouteDef]:
    def store(data: bytes, upload_path: str, file_name: str, mime_type: str) -> web.Response:
        file_path = f"kieai/{ACCOUNT}/{upload_path}/{file_name}"
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        emu.uploads[file_path] = StoredFile(data, mime_type, file_name, now)
        return emu.reply(200, "File uploaded successfully", {
            "success": True, "fileName": file_name, "filePath": file_path,
            "downloadUrl": f"{emu.files_url}/{file_path}", "fileSize": len(data),
            "mimeType": mime_type, "uploadedAt": now,
        }, upload=True)

    def guarded(handler):  # noqa: ANN001, ANN202 - tiny local decorator
        async def wrapper(request: web.Request) -> web.Response:
            if not emu.authorized(request):
                return emu.reply(401, "Authentication failed: Invalid API Key", upload=True)
            try:
                return await handler(request)
            except _UploadError as exc:
                return emu.reply(exc.code, exc.msg, upload=True)
        return wrapper

    async def json_body(request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _UploadError("Request body must be JSON") from None
        if not isinstance(body, dict):
            raise _UploadError("Request body must be a JSON object")
        return body

    @guarded
    async def stream_upload(request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise _UploadError("Content-Type must be multipart/form-data")
        fields: dict[str, str] = {}
        data: bytes | None = None
        part_name = part_type = None
        reader = await request.multipart()
        async for part in reader:
            if part.name == "file":
                data = await part.read()
                part_name, part_type = part.filename, part.headers.get("Content-Type")
            elif part.name:
                fields[part.name] = await part.text()
        upload_path = _clean_path(fields.get("uploadPath"))
        if data is None:
            raise _UploadError("Missing required parameter: file")
        name = fields.get("fileName") or part_name
        mime = part_type if part_type and part_type != "application/octet-stream" else _guess_mime(name)
        return store(data, upload_path, _clean_name(name, mime), mime)

    @guarded
    async def base64_upload(request: web.Request) -> web.Response:
        body = await json_body(request)
        upload_path = _clean_path(body.get("uploadPath"))
        raw = body.get("base64Data")
        if not isinstance(raw, str) or not raw:
            raise _UploadError("Missing required parameter: base64Data")
        mime = _guess_mime(body.get("fileName") if isinstance(body.get("fileName"), str) else None)
        if raw.startswith("data:"):
            header, _, raw = raw.partition(",")
            mime = header[5:].split(";")[0] or mime
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _UploadError("Base64 decoding failed: Invalid Base64 format") from None
        return store(data, upload_path, _clean_name(body.get("fileName"), mime), mime)

    @guarded
    async def url_upload(request: web.Request) -> web.Response:
        body = await json_body(request)
        upload_path = _clean_path(body.get("uploadPath"))
        url = body.get("fileUrl")
        if not isinstance(url, str) or not url:
            raise _UploadError("Missing required parameter: fileUrl")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _UploadError("fileUrl must be an http(s) URL")
        if not _is_loopback(parts.hostname):
            # The emulator must never reach the internet: only itself or other loopback servers.
            raise _UploadError("File download failed: the emulator fetches only loopback URLs")
        try:
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, allow_redirects=False) as resp:
                # No redirects: a loopback server must not bounce the emulator onto the internet.
                if resp.status != 200:
                    raise _UploadError(f"File download failed: HTTP {resp.status}")
                data = await resp.read()
                mime = resp.content_type or "application/octet-stream"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _UploadError(f"File download failed: {type(exc).__name__}") from None
        default_name = unquote(parts.path.rsplit("/", 1)[-1]) or None
        name = body.get("fileName") or default_name
        if mime == "application/octet-stream":
            mime = _guess_mime(name)
        return store(data, upload_path, _clean_name(name, mime), mime)

    return [
        web.post("/api/file-stream-upload", stream_upload),
        web.post("/api/file-base64-upload", base64_upload),
        web.post("/api/file-url-upload", url_upload),
    ]
