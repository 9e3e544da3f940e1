"""Reading a Bot API request the way the official server does: query string, urlencoded, JSON or
multipart (with `attach://` parts), and writing its JSON reply."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import ApiError, bad_request
from .limits import MAX_UPLOAD_BYTES
from .spec import Upload

_CHUNK = 1 << 16
_SECRET_PARAMS = {"secret_token", "provider_token"}


@dataclass
class Reply:
    """A handler's success value, optionally with the description the official server adds."""

    result: Any
    description: str | None = None


@dataclass
class Call:
    """One request the fake received, as tests see it."""

    method: str
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict, repr=False)
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    via_webhook_reply: bool = False
    at: float = 0.0  # the fake's clock when the call was answered
    # when it reached flood control: Telegram's limits count calls as they arrive, so rates and
    # "most in any second" are measured here (an upload's answer may come a little later)
    arrived_at: float = 0.0

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k in _SECRET_PARAMS else v) for k, v in self.params.items()}
        return f"Call(method={self.method!r}, params={shown!r}, status={self.status})"

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        return self.response.get("result")


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Merge query string and body into raw parameters; file parts go to the second dict."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method != "POST" or not request.body_exists:
        return params, files
    try:
        await _read_body(request, params, files)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    _promote_direct_files(params, files)
    return params, files


async def _read_body(request: web.Request, params: dict[str, Any], files: dict[str, Upload]) -> None:
    ctype = request.content_type
    if ctype == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("can't parse JSON object")
        params.update(body)
    elif ctype == "multipart/form-data":
        await _read_multipart(request, params, files)
    elif ctype == "application/x-www-form-urlencoded":
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})


async def _read_multipart(request: web.Request, params: dict[str, Any], files: dict[str, Upload]) -> None:
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise bad_request("nested multipart bodies are not supported")
        name = part.name or ""
        if part.filename is None:
            params[name] = (await part.read(decode=True)).decode("utf-8", errors="replace")
            continue
        chunks, total = [], 0
        while chunk := await part.read_chunk(_CHUNK):
            total += len(chunk)
            if total > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            chunks.append(chunk)
        ctype = part.headers.get("Content-Type")
        files[name] = Upload(part.filename, ctype, b"".join(chunks))


def _promote_direct_files(params: dict[str, Any], files: dict[str, Upload]) -> None:
    """A file part named like the parameter itself (photo=<file>) is that parameter's value."""
    text = " ".join(v for v in params.values() if isinstance(v, str))
    for name in list(files):
        if name not in params and f"attach://{name}" not in text:
            params[name] = files.pop(name)


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.code, headers=error.headers())
