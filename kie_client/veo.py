"""KIE's dedicated Veo 3.1 routes (kie-market-2026.md shape V), normalised to the Market types.

- `POST /api/v1/veo/generate` {prompt, model, generationType, imageUrls, aspect_ratio, resolution,
  enableTranslation, watermark, callBackUrl} → data.taskId;
- `GET /api/v1/veo/record-info?taskId=` → data.successFlag 0 generating / 1 success / 2 failed /
  3 generation failed, data.response.resultUrls (originUrls, fullResultUrls), errorCode/errorMessage;
- `GET /api/v1/veo/get-1080p-video?taskId=&index=` → data.resultUrl (body code 400 while it is
  still being made: "1080P is processing");
- `POST /api/v1/veo/get-4k-video` {taskId, index, callBackUrl} → billed (+120 cr per KIE's list);
- callbacks: {code, msg, data: {taskId, info: {resultUrls, originUrls, resolution}, fallbackFlag}},
  code 200 on success, 400/422/500/501 on failure.

`VeoClient` rides on a `KieClient`: the same HTTP client, Bearer key, error classes
(errors.error_for), retry policy and rate limiters (KIE's limits are per account, so Veo's creates
share the Market's create window), and the same createTask rule — generate is never retried once
it may have reached KIE; an unknown outcome is `KieSubmissionUnknownError`.

Records and callbacks come back as `TaskRecord` / `CallbackPayload` (state generating, success or
fail), so the pipeline treats both shapes alike.
"""

from __future__ import annotations

import json
from typing import Any

from .callbacks import MAX_CALLBACK_BYTES, callback_code, callback_document, task_id_of
from .client import KieClient
from .errors import KieAPIStatusError, KieResponseError
from .types import CallbackPayload, TaskCreated, TaskRecord, TaskState, _opt_str, _timestamp

__all__ = ["VeoClient", "parse_veo_callback", "veo_record", "SUCCESS_FLAGS"]

GENERATE_PATH = "/api/v1/veo/generate"
RECORD_PATH = "/api/v1/veo/record-info"
HD_PATH = "/api/v1/veo/get-1080p-video"
UHD_PATH = "/api/v1/veo/get-4k-video"

# successFlag → the Market state it means.
SUCCESS_FLAGS = {0: TaskState.GENERATING, 1: TaskState.SUCCESS, 2: TaskState.FAIL, 3: TaskState.FAIL}


class VeoClient:
    def __init__(self, kie: KieClient) -> None:
        self.kie = kie

    def __repr__(self) -> str:
        return f"VeoClient({self.kie!r})"

    def _url(self, path: str) -> str:
        return self.kie.market_base_url + path

    async def generate(self, body: dict[str, Any]) -> TaskCreated:
        """Create a Veo task from a complete request body (see the module docstring)."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise ValueError("generate needs a body dict with a model")
        data = await self.kie._call("POST", self._url(GENERATE_PATH), kind="create",
                                    limiter=self.kie.create_limiter, json=body)
        try:
            return TaskCreated.from_api(data)
        except KieResponseError as err:
            raise KieClient._final_error(err, "create") from None

    async def record_info(self, task_id: str) -> TaskRecord:
        if not isinstance(task_id, str) or not task_id.strip():
            raise ValueError("record_info needs a task id")
        data = await self.kie._call("GET", self._url(RECORD_PATH), kind="read",
                                    limiter=self.kie.status_limiter,
                                    params={"taskId": task_id.strip()})
        if data is None:
            raise KieResponseError(f"veo record-info for {task_id} answered success without data")
        return veo_record(data)

    async def get_1080p_video(self, task_id: str, index: int = 0) -> str | None:
        """The 1080p file of a finished 16:9 task; None while KIE is still making it (ask again
        in a minute or two)."""
        try:
            data = await self.kie._call("GET", self._url(HD_PATH), kind="read",
                                        limiter=self.kie.status_limiter,
                                        params={"taskId": task_id, "index": str(int(index))})
        except KieAPIStatusError as err:
            if err.body_code == 400 and "processing" in err.message.lower():
                return None
            raise
        url = _opt_str(data.get("resultUrl")) if isinstance(data, dict) else None
        if not url or not url.startswith(("http://", "https://")):
            raise KieResponseError("get-1080p-video answered success without a resultUrl")
        return url

    async def get_4k_video(self, task_id: str, index: int = 0,
                           callback_url: str | None = None) -> list[str]:
        """Ask for the 4K file of a finished task (billed, so never retried once sent). Returns
        the 4K URLs when KIE answers with them at once, else [] (they come by the callback, or
        from `get_4k_video` asked again later)."""
        body: dict[str, Any] = {"taskId": task_id, "index": int(index)}
        if callback_url:
            body["callBackUrl"] = callback_url
        data = await self.kie._call("POST", self._url(UHD_PATH), kind="create",
                                    limiter=self.kie.create_limiter, json=body)
        if not isinstance(data, dict):
            return []
        return _urls(data.get("resultUrls"), "resultUrls", task_id)


def veo_record(data: Any) -> TaskRecord:
    """A record-info `data` object as a TaskRecord (state from successFlag)."""
    if not isinstance(data, dict):
        raise KieResponseError(f"veo record is not an object (got {type(data).__name__})")
    task_id = task_id_of(data.get("taskId"))
    if not task_id:
        raise KieResponseError("veo record has no taskId")
    flag = data.get("successFlag")
    if isinstance(flag, str) and flag.strip().isdigit():
        flag = int(flag)
    if isinstance(flag, bool) or flag not in SUCCESS_FLAGS:
        raise KieResponseError(f"veo record {task_id} has an unknown successFlag {flag!r}")
    state = SUCCESS_FLAGS[flag]
    response = data.get("response") if isinstance(data.get("response"), dict) else {}
    urls = _urls(response.get("resultUrls"), "resultUrls", task_id)
    if state is TaskState.SUCCESS and not urls:
        urls = _urls(response.get("fullResultUrls"), "fullResultUrls", task_id)
    param = _param(data.get("paramJson"))
    fail_code = _opt_str(data.get("errorCode"))
    fail_msg = _opt_str(data.get("errorMessage"))
    if state is TaskState.FAIL and fail_code is None:
        fail_code = str(flag)
    return TaskRecord(
        task_id=task_id, model=_opt_str(param.get("model")) or "", state=state, param=param,
        input=param, result_urls=urls if state is TaskState.SUCCESS else [],
        fail_code=fail_code if state is TaskState.FAIL else None,
        fail_msg=fail_msg if state is TaskState.FAIL else None,
        create_time=_time(data.get("createTime")), complete_time=_time(data.get("completeTime")),
    )


def parse_veo_callback(body: bytes, *, max_bytes: int = MAX_CALLBACK_BYTES) -> CallbackPayload:
    """A Veo callback body as a CallbackPayload: code 200 with result URLs is a success record;
    any other code a failed one (the pipeline still confirms a failure with record-info)."""
    doc = callback_document(body, max_bytes=max_bytes)
    code = callback_code(doc)
    data = doc.get("data")
    if data is not None and not isinstance(data, dict):
        raise KieResponseError(f"callback data is a {type(data).__name__}, not an object")
    data = data or {}
    task_id = task_id_of(data.get("taskId")) or task_id_of(data.get("task_id")) or task_id_of(
        doc.get("taskId"))
    if not task_id:
        raise KieResponseError("callback carries no task id (data.taskId, data.task_id, taskId)")
    msg = str(doc.get("msg") or doc.get("message") or "")
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    if code == 200:
        urls = _urls(info.get("resultUrls"), "resultUrls", task_id)
        record = TaskRecord(task_id=task_id, state=TaskState.SUCCESS, result_urls=urls)
    else:
        record = TaskRecord(task_id=task_id, state=TaskState.FAIL, fail_code=str(code),
                            fail_msg=msg or None)
    return CallbackPayload(task_id=task_id, code=code, msg=msg, state=record.state, record=record)


def _urls(value: Any, name: str, task_id: str) -> list[str]:
    """A URL list as KIE sends it: a JSON array, a JSON-encoded array, or (the callback page's
    example) a bracketed string that is not JSON: "[http://…/video1.mp4]"."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            value = [part.strip().strip("'\"") for part in text.strip("[]").split(",")]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise KieResponseError(f"veo task {task_id} {name} is not a list of URLs")
    return [u.strip() for u in value if u.strip()]


def _param(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _time(value: Any):
    """Unix milliseconds (as the Market sends) or None; KIE's Veo pages also show text dates,
    which carry nothing the pipeline needs."""
    if isinstance(value, str) and not value.strip().replace(".", "", 1).isdigit():
        return None
    try:
        return _timestamp(value, "time")
    except KieResponseError:
        return None
