"""Chat completions (kie-market-2026.md shape C): `POST /<model>/v1/chat/completions`.

Validates like KIE: Bearer key (401), a known chat model in the path (404 otherwise), a JSON
object body with a non-empty `messages` list of {role: system|user|assistant|developer, content:
text or text parts} holding at least one user message (422 with the reason otherwise); `stream`
true is refused (422: the emulator answers whole completions only). Errors use KIE's body shape
and honour `mirror_http_status`.

The answer is deterministic, so tests can predict it (`rewrite`): the last user message
transliterated to Latin letters (it reads like a translation without a dictionary) plus a fixed
set of descriptive words for an image or, when the system message speaks of video, for a clip.
Fault knobs: `chat_errors` / `chat_error_code`, `hang_chats` with `hang_seconds` (faults.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .routes_market import _BAD, _UNAUTHORIZED, _json

if TYPE_CHECKING:
    from .server import KieEmulator

CHAT_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-flash", "gemini-3-pro",
               "gemini-3.1-pro", "gpt-5-2", "gpt-5-4")
ROLES = ("system", "user", "assistant", "developer")
IMAGE_WORDS = "highly detailed, professional photography, soft natural light, sharp focus"
VIDEO_WORDS = "cinematic shot, smooth camera movement, natural motion, soft light"

_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "yo", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
))


def transliterate(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in _CYRILLIC:
            latin = _CYRILLIC[low]
            out.append(latin.capitalize() if ch != low else latin)
        else:
            out.append(ch)
    return "".join(out)


def rewrite(prompt: str, *, video: bool = False) -> str:
    """What the emulator answers for a user message `prompt`."""
    base = " ".join(transliterate(prompt).split()).rstrip(" .,")
    return f"{base}, {VIDEO_WORDS if video else IMAGE_WORDS}"


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return None


def check_chat(body: Any) -> tuple[str, str] | str:
    """(system text, last user text) for a valid body, else the 422 reason."""
    if body is _BAD or not isinstance(body, dict):
        return "Request body must be a JSON object"
    messages = body.get("messages")
    if messages is None:
        return "messages is required"
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    system, user = "", None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {', '.join(ROLES)}"
        text = _text(m.get("content"))
        if text is None:
            return f"messages[{i}].content must be a string or an array of text parts"
        if m["role"] in ("system", "developer"):
            system += text
        elif m["role"] == "user":
            user = text
    if user is None or not user.strip():
        return "messages must include a user message with text"
    if body.get("stream") not in (None, False):
        return "stream is not supported here"
    return system, user


def chat_routes(emu: KieEmulator) -> list[web.RouteDef]:
    async def completions(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        model = request.match_info["model"]
        if model not in CHAT_MODELS:
            return emu.reply(404, f"model {model} not found")
        faults = emu.faults
        if faults.chat_errors > 0:
            faults.chat_errors -= 1
            code = faults.chat_error_code
            return emu.reply(code, "Rate limit exceeded" if code == 429 else "Internal server error")
        checked = check_chat(await _json(request))
        if isinstance(checked, str):
            return emu.reply(422, checked)
        system, user = checked
        if faults.hang_chats > 0:
            faults.hang_chats -= 1
            await emu.hang(faults.hang_seconds)
        text = rewrite(user, video="video" in system.lower())
        return web.json_response({
            "id": f"chatcmpl-{len(emu.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len((system + user).split()),
                      "completion_tokens": len(text.split())},
        })

    return [web.post("/{model}/v1/chat/completions", completions)]
