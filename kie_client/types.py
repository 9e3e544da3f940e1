"""Typed results of KIE calls, built tolerantly from what KIE really sends.

KIE's docs and its live answers disagree in many small ways (kie-api.md §2.2, §13); each
`from_api` accepts every variant seen so far and raises `KieResponseError` with a clear message
only when something we need is missing or unusable:
- `msg` or `message`; `failCode`/`failMsg`/`resultJson` as null or "";
- `param` as a JSON string whose `input` is JSON-encoded again (live), or nested (docs);
- `costTime` in seconds (live, callbacks) or milliseconds (recordInfo docs) — see `_cost_seconds`;
- Unix-millisecond timestamps, `updateTime` often absent; `creditsConsumed` only sometimes;
- both upload response shapes (per-endpoint/live and the quickstart's fileUrl/fileId/expiresAt).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import KieResponseError

__all__ = ["TaskState", "TaskCreated", "TaskRecord", "UploadedFile", "CallbackPayload"]


class TaskState(str, Enum):
    WAITING = "waiting"
    QUEUING = "queuing"
    GENERATING = "generating"
    SUCCESS = "success"
    FAIL = "fail"

    @classmethod
    def parse(cls, value: Any) -> TaskState:
        try:
            return cls(str(value).strip().lower()) if value is not None else cls(value)
        except ValueError:
            raise KieResponseError(
                f"KIE reported an unknown task state {value!r} "
                f"(known: {', '.join(s.value for s in cls)})"
            ) from None

    @property
    def is_final(self) -> bool:
        return self in (TaskState.SUCCESS, TaskState.FAIL)


_FROZEN = ConfigDict(frozen=True, extra="ignore")


class TaskCreated(BaseModel):
    model_config = _FROZEN
    task_id: str
    record_id: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> TaskCreated:
        if not isinstance(data, dict):
            raise KieResponseError(f"createTask answered without a data object (got {_kind(data)})")
        task_id = _opt_str(data.get("taskId") or data.get("task_id"))
        if not task_id:
            raise KieResponseError("createTask answered success without a taskId")
        return cls(task_id=task_id, record_id=_opt_str(data.get("recordId")))


class TaskRecord(BaseModel):
    model_config = _FROZEN
    task_id: str
    model: str = ""
    state: TaskState
    param: dict = {}
    input: dict = {}
    result_urls: list[str] = []
    fail_code: str | None = None
    fail_msg: str | None = None
    cost_time_s: float | None = None
    create_time: datetime | None = None
    complete_time: datetime | None = None
    update_time: datetime | None = None
    credits_consumed: float | None = None

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @classmethod
    def from_api(cls, data: Any) -> TaskRecord:
        """Build from recordInfo's (or a callback's) `data` object."""
        if not isinstance(data, dict):
            raise KieResponseError(f"task record is not an object (got {_kind(data)})")
        task_id = _opt_str(data.get("taskId") or data.get("task_id"))
        if not task_id:
            raise KieResponseError("task record has no taskId")
        if "state" not in data:
            raise KieResponseError(f"task record {task_id} has no state")
        state = TaskState.parse(data.get("state"))
        param = _parse_param(data.get("param"))
        create = _timestamp(data.get("createTime"), "createTime")
        complete = _timestamp(data.get("completeTime"), "completeTime")
        try:
            return cls(
                task_id=task_id,
                model=_opt_str(data.get("model")) or _opt_str(param.get("model")) or "",
                state=state,
                param=param,
                input=_parse_input(param.get("input")),
                result_urls=_result_urls(data.get("resultJson"), state, task_id),
                fail_code=_opt_str(data.get("failCode")),
                fail_msg=_opt_str(data.get("failMsg")),
                cost_time_s=_cost_seconds(data.get("costTime"), create, complete),
                create_time=create,
                complete_time=complete,
                update_time=_timestamp(data.get("updateTime"), "updateTime"),
                credits_consumed=_opt_number(data.get("creditsConsumed"), "creditsConsumed"),
            )
        except ValidationError as exc:
            raise KieResponseError(f"task record {task_id} has unusable fields: {exc}") from None


class UploadedFile(BaseModel):
    model_config = _FROZEN
    download_url: str
    file_name: str | None = None
    file_path: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    file_url: str | None = None
    file_id: str | None = None
    uploaded_at: str | None = None
    expires_at: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> UploadedFile:
        if not isinstance(data, dict):
            raise KieResponseError(f"upload answered without a data object (got {_kind(data)})")
        # The live and per-endpoint shape has downloadUrl; the quickstart shape adds fileUrl.
        url = _opt_str(data.get("downloadUrl")) or _opt_str(data.get("fileUrl"))
        if not url or not url.startswith(("http://", "https://")):
            raise KieResponseError("upload answered success without a usable downloadUrl")
        size = data.get("fileSize")
        return cls(
            download_url=url,
            file_name=_opt_str(data.get("fileName")),
            file_path=_opt_str(data.get("filePath")) or _opt_str(data.get("uploadPath")),
            file_size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None,
            mime_type=_opt_str(data.get("mimeType")),
            file_url=_opt_str(data.get("fileUrl")),
            file_id=_opt_str(data.get("fileId")),
            uploaded_at=_opt_str(data.get("uploadedAt") or data.get("uploadTime")),
            expires_at=_opt_str(data.get("expiresAt")),
        )


class CallbackPayload(BaseModel):
    model_config = _FROZEN
    task_id: str
    code: int
    msg: str = ""
    state: TaskState | None = None
    record: TaskRecord | None = None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _opt_number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise KieResponseError(f"{name} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise KieResponseError(f"{name} is not a number: {value!r}") from None


def _timestamp(value: Any, name: str) -> datetime | None:
    number = _opt_number(value, name)
    if not number:
        return None
    # KIE sends Unix milliseconds; a value below 1e11 can only be seconds (1e11 ms is 1973).
    seconds = number / 1000.0 if number >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise KieResponseError(f"{name} is not a valid timestamp: {value!r}") from None


def _cost_seconds(value: Any, create: datetime | None, complete: datetime | None) -> float | None:
    """costTime in seconds.

    Live recordInfo and every callback example use seconds; the recordInfo docs say
    milliseconds (example 15000 for a 32 s task). When both timestamps exist, a costTime far
    larger than the wall-clock duration can only be milliseconds; otherwise assume seconds.
    """
    cost = _opt_number(value, "costTime")
    if cost is None:
        return None
    if create and complete:
        elapsed = (complete - create).total_seconds()
        if elapsed >= 0 and cost > elapsed * 2 + 5:
            return cost / 1000.0
    return cost


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise KieResponseError(f"{what} is not valid JSON") from None


def _parse_param(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        parsed = _loads(value, "task param")
        if isinstance(parsed, dict):
            return parsed
    raise KieResponseError(f"task param is not a JSON object (got {_kind(value)})")


def _parse_input(value: Any) -> dict:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):  # live: input is JSON-encoded a second time
        parsed = _loads(value, "task param.input")
        if isinstance(parsed, dict):
            return parsed
    raise KieResponseError(f"task param.input is not a JSON object (got {_kind(value)})")


def _result_urls(value: Any, state: TaskState, task_id: str) -> list[str]:
    """resultJson {"resultUrls": [...]}; only a successful task must have a parseable one."""
    if value is None or value == "":
        return []
    try:
        parsed = value if isinstance(value, dict) else _loads(str(value), "resultJson")
    except KieResponseError:
        if state is TaskState.SUCCESS:
            raise KieResponseError(f"task {task_id} succeeded but its resultJson is not JSON") from None
        return []
    urls = parsed.get("resultUrls") if isinstance(parsed, dict) else None
    if urls is None:
        return []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise KieResponseError(f"task {task_id} resultJson.resultUrls is not a list of strings")
    return [u for u in urls if u.strip()]
