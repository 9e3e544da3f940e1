"""Veo 3.1's dedicated routes (kie-market-2026.md shape V): generate, record-info, the 1080p and
4K follow-ups. Validation follows KIE's "Generate Veo3.1 Video" page: `prompt` required; `model`
veo3 | veo3_fast | veo3_lite (default veo3_fast); `generationType` TEXT_2_VIDEO (no images),
FIRST_AND_LAST_FRAMES_2_VIDEO (1–2 images), REFERENCE_2_VIDEO (1–3 images, veo3_fast only, 16:9
or 9:16); `aspect_ratio` 16:9 | 9:16 | Auto; `resolution` 720p | 1080p | 4k; `enableTranslation`
and `enableFallback` booleans; `watermark` text; `callBackUrl` http(s); anything else is refused.
Errors answer 422 with the reason in `msg` (401, 402, 429 as on the Market routes). Tasks share
the Market's lifecycle, fault knobs and files; recordInfo and the callback show them in Veo's
shape (tasks.py `veo_record`, callbacks.py `veo_callback_body`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kie_client.catalog import MODELS, CatalogError, validate_input
from .routes_market import _BAD, _NO_CREDITS, _UNAUTHORIZED, _json
from .tasks import ResultFile

if TYPE_CHECKING:
    from .server import KieEmulator

DEFAULT_MODEL = "veo3_fast"
HD_EXTRA_CREDITS = Decimal(5)  # KIE's list: get-1080p +5 cr
UHD_EXTRA_CREDITS = Decimal(120)  # get-4k +120 cr
_BODY_ONLY = ("model", "callBackUrl", "generationType", "imageUrls", "watermark", "enableFallback",
              "seeds")
# KIE's Veo model ids and generation types, as the catalog's data (data/veo.toml) declares them.
VEO_KIE_MODELS = tuple(sorted({s.kie_model for s in MODELS if s.api == "veo"}))
VEO_GENERATION_TYPES = next(
    (e.values for s in MODELS if s.api == "veo" for e in s.extra_fields if e.name == "generationType"),
    ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO"))


def check_generate(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """(model, the task's input) for a valid generate body, else the 422 reason."""
    model = body.get("model", DEFAULT_MODEL)
    if model not in VEO_KIE_MODELS:
        return f"model must be one of {', '.join(VEO_KIE_MODELS)}"
    if "prompt" not in body:
        return "prompt is required"
    callback = body.get("callBackUrl")
    if callback is not None and (not isinstance(callback, str)
                                 or not callback.startswith(("http://", "https://"))):
        return "callBackUrl must be an http(s) URL"
    images = body.get("imageUrls", [])
    if not isinstance(images, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in images):
        return "imageUrls must be an array of http(s) URLs"
    kind = body.get("generationType")
    if kind is not None and kind not in VEO_GENERATION_TYPES:
        return f"generationType must be one of {', '.join(VEO_GENERATION_TYPES)}"
    if kind == "TEXT_2_VIDEO" and images:
        return "TEXT_2_VIDEO takes no imageUrls"
    if kind == "REFERENCE_2_VIDEO":
        if model != "veo3_fast":
            return "REFERENCE_2_VIDEO mode currently only supports veo3_fast model"
        if not 1 <= len(images) <= 3:
            return "REFERENCE_2_VIDEO requires 1-3 images in imageUrls"
        if body.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
            return "REFERENCE_2_VIDEO supports 16:9 and 9:16 only"
    elif len(images) > 2:
        return "imageUrls supports 1 or 2 images"
    elif kind == "FIRST_AND_LAST_FRAMES_2_VIDEO" and not images:
        return "FIRST_AND_LAST_FRAMES_2_VIDEO requires 1-2 images in imageUrls"
    if "watermark" in body and not isinstance(body["watermark"], str):
        return "watermark must be a string"
    if "enableFallback" in body and not isinstance(body["enableFallback"], bool):
        return "enableFallback must be a boolean"
    seeds = body.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int)
                              or not 10000 <= seeds <= 99999):
        return "seeds must be an integer from 10000 to 99999"
    core = {k: v for k, v in body.items() if k not in _BODY_ONLY}
    try:
        # prompt, aspect_ratio, resolution, enableTranslation (and the model the catalog carries)
        validate_input(model, {"model": model, **core})
    except CatalogError as exc:
        return exc.message
    task_input = dict(core)
    if images:
        task_input["imageUrls"] = list(images)
    return model, task_input


def veo_routes(emu: KieEmulator) -> list[web.RouteDef]:
    async def generate(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        body = await _json(request)
        if body is _BAD or not isinstance(body, dict):
            return emu.reply(400, "Request body must be a JSON object")
        if emu.faults.create_errors > 0:
            emu.faults.create_errors -= 1
            code = emu.faults.create_error_code
            return emu.reply(code, "Rate limit exceeded" if code == 429 else "Internal server error")
        checked = check_generate(body)
        if isinstance(checked, str):
            return emu.reply(422, checked)
        model, task_input = checked
        if not emu.allow_create():
            return emu.reply(429, "Rate limit exceeded")
        if emu.credits < emu.price_of(model, task_input):
            return emu.reply(402, _NO_CREDITS)
        task = emu.create_task(model, task_input, body.get("callBackUrl"), api="veo")
        if emu.faults.hang_creates > 0:
            emu.faults.hang_creates -= 1
            await emu.hang(emu.faults.hang_seconds)
        return emu.reply(200, "success", {"taskId": task.task_id})

    async def record_info(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        if not emu.allow_record():
            return emu.reply(429, "Rate limit exceeded")
        task_id = request.query.get("taskId", "").strip()
        if not task_id:
            return emu.reply(400, "taskId parameter is required")
        task = emu.tasks.get(task_id)
        if task is None or task.api != "veo":
            return emu.reply(422, "recordInfo is null", None)
        return emu.reply(200, "success", emu.visible_record(task))

    def finished(task_id: str, index: Any):
        """(task, index) of a finished Veo task, or the error reply."""
        task = emu.tasks.get(str(task_id or "").strip())
        if task is None or task.api != "veo":
            return emu.reply(422, "recordInfo is null", None)
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(task.result_urls):
            return emu.reply(422, "index is out of range")
        if task.state != "success":
            return emu.reply(422, "The video has not been generated successfully")
        return task, index

    async def hd_video(request: web.Request) -> web.Response:
        """First ask: 400 "1080P is processing" (KIE makes it on demand); then its URL."""
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        found = finished(request.query.get("taskId"), request.query.get("index", "0"))
        if isinstance(found, web.Response):
            return found
        task, index = found
        name = f"hd_{index}.mp4"
        if task.file(name) is None:
            task.files.append(ResultFile(name, "video/mp4", 192, 108, 8))
            task.cost += HD_EXTRA_CREDITS
            emu.credits -= HD_EXTRA_CREDITS
            return emu.reply(400, "1080P is processing. It should be ready in 1-2 minutes. "
                                  "Please check back shortly.")
        return emu.reply(200, "success", {"resultUrl": f"{task.result_base}/{task.task_id}/{name}"})

    async def uhd_video(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        body = await _json(request)
        if body is _BAD or not isinstance(body, dict):
            return emu.reply(400, "Request body must be a JSON object")
        found = finished(body.get("taskId"), body.get("index", 0))
        if isinstance(found, web.Response):
            return found
        task, index = found
        name = f"uhd_{index}.mp4"
        if task.file(name) is None:
            if emu.credits < UHD_EXTRA_CREDITS:
                return emu.reply(402, _NO_CREDITS)
            task.files.append(ResultFile(name, "video/mp4", 384, 216, 8))
            task.cost += UHD_EXTRA_CREDITS
            emu.credits -= UHD_EXTRA_CREDITS
        url = f"{task.result_base}/{task.task_id}/{name}"
        return emu.reply(200, "success", {"taskId": task.task_id, "resultUrls": [url]})

    return [
        web.post("/api/v1/veo/generate", generate),
        web.get("/api/v1/veo/record-info", record_info),
        web.get("/api/v1/veo/get-1080p-video", hd_video),
        web.post("/api/v1/veo/get-4k-video", uhd_video),
    ]
