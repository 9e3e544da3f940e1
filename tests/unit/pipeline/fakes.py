"""The pipeline's outside world, in memory: a settable clock, a scripted KIE, a file host and a
recording Telegram bot. Nothing here opens a socket or sleeps; time moves only when a test (or
something that would have slept) moves it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from kie_client.catalog import CatalogError, validate_input

from testkit.kie.callbacks import veo_callback_body
from testkit.kie.routes_veo import check_generate
from tests.unit.kie.fixtures import load

# A PNG signature is all SafeDownloader's sniffer needs to accept the body as an image.
PNG = b"\x89PNG\r\n\x1a\n" + b"fake image body " * 64
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"fake video body " * 64
RESULT_HOST = "tempfile.aiquickdraw.com"
MARKET_URL = "https://api.kie.test"
UPLOAD_URL = "https://upload.kie.test"


class FakeClock:
    """Wall clock (Pipeline.clock) and monotonic clock (ChatSender, limiters) in one.

    `sleep` advances it instead of waiting, so a paced send or a limiter wait costs no real time
    and shows up in `sleeps`."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._epoch = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - self._epoch).total_seconds()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))


@dataclass
class ScriptedTask:
    task_id: str
    model: str
    input: dict
    callback_url: str | None
    state: str = "waiting"
    result_urls: list[str] = field(default_factory=list)
    fail_code: str | None = None
    fail_msg: str | None = None
    api: str = "market"  # or "veo": created through /api/v1/veo/generate


class ScriptedKie:
    """KIE's market API as an httpx.MockTransport handler.

    createTask validates the input as KIE does and hands out a task id (unless told to lose its
    answer: the task is created, the client sees a read timeout); recordInfo answers each task's
    current state with bodies shaped like the recorded ones in tests/unit/kie/fixtures. Anything
    else is recorded in `unexpected` and answered 404.
    """

    def __init__(self) -> None:
        self.tasks: dict[str, ScriptedTask] = {}
        self.record_reads: list[str] = []
        self.unexpected: list[str] = []
        self.lose_next_create_answer = False

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def creates(self) -> list[ScriptedTask]:
        return list(self.tasks.values())

    def succeed(self, task_id: str, *urls: str) -> None:
        task = self.tasks[task_id]
        task.state = "success"
        ext = "mp4" if task.api == "veo" else "png"
        task.result_urls = list(urls) or [f"https://{RESULT_HOST}/r/{task_id}_0.{ext}"]

    def fail(self, task_id: str, message: str = "prompt contains prohibited content") -> None:
        task = self.tasks[task_id]
        task.state, task.fail_code, task.fail_msg = "fail", "422", message

    def callback_body(self, task_id: str) -> bytes:
        """The body KIE posts to callBackUrl when `task_id` finishes (recorded shape; a Veo
        task's in Veo's documented shape)."""
        task = self.tasks[task_id]
        if task.api == "veo":
            return json.dumps(veo_callback_body(self._veo_record(task))).encode()
        body = load("callback_success_docs" if task.state == "success" else "callback_fail_docs")
        body["data"].update(self._record(task))
        return json.dumps(body).encode()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/jobs/createTask":
            return self._create(json.loads(request.content))
        if request.method == "GET" and path == "/api/v1/jobs/recordInfo":
            return self._record_info(request.url.params.get("taskId", ""))
        if request.method == "POST" and path == "/api/v1/veo/generate":
            return self._veo_generate(json.loads(request.content))
        if request.method == "GET" and path == "/api/v1/veo/record-info":
            return self._veo_record_info(request.url.params.get("taskId", ""))
        self.unexpected.append(f"{request.method} {request.url}")
        return httpx.Response(404, json={"code": 404, "msg": "not found"})

    def _create(self, body: dict) -> httpx.Response:
        try:
            validate_input(body["model"], body["input"])
        except CatalogError as exc:
            return httpx.Response(200, json={"code": 422, "msg": str(exc), "data": None})
        task_id = f"task{len(self.tasks) + 1:04d}"
        self.tasks[task_id] = ScriptedTask(task_id, body["model"], body["input"],
                                           body.get("callBackUrl"))
        if self.lose_next_create_answer:
            self.lose_next_create_answer = False
            raise httpx.ReadTimeout("the answer was lost after KIE created the task")
        answer = load("create_task_live")
        answer["data"].update(taskId=task_id, recordId=task_id)
        return httpx.Response(200, json=answer)

    def _record_info(self, task_id: str) -> httpx.Response:
        self.record_reads.append(task_id)
        task = self.tasks.get(task_id)
        if task is None:
            return httpx.Response(200, json=load("record_info_null"))
        body = load("record_info_waiting_live")
        body["data"].update(self._record(task))
        return httpx.Response(200, json=body)

    def _veo_generate(self, body: dict) -> httpx.Response:
        checked = check_generate(body)
        if isinstance(checked, str):
            return httpx.Response(200, json={"code": 422, "msg": checked, "data": None})
        model, task_input = checked
        task_id = f"veo{len(self.tasks) + 1:04d}"
        self.tasks[task_id] = ScriptedTask(task_id, model, task_input, body.get("callBackUrl"),
                                           api="veo")
        if self.lose_next_create_answer:
            self.lose_next_create_answer = False
            raise httpx.ReadTimeout("the answer was lost after KIE created the task")
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": task_id}})

    def _veo_record_info(self, task_id: str) -> httpx.Response:
        self.record_reads.append(task_id)
        task = self.tasks.get(task_id)
        if task is None:
            return httpx.Response(200, json=load("record_info_null"))
        return httpx.Response(200, json={"code": 200, "msg": "success",
                                          "data": self._veo_record(task)})

    @staticmethod
    def _veo_record(task: ScriptedTask) -> dict:
        flag = {"success": 1, "fail": 3}.get(task.state, 0)
        return {"taskId": task.task_id, "successFlag": flag,
                "paramJson": json.dumps({"model": task.model, **task.input}),
                "response": {"taskId": task.task_id, "resultUrls": task.result_urls} if flag == 1 else None,
                "errorCode": int(task.fail_code) if task.fail_code else None,
                "errorMessage": task.fail_msg, "fallbackFlag": False}

    @staticmethod
    def _record(task: ScriptedTask) -> dict:
        result = json.dumps({"resultUrls": task.result_urls}) if task.result_urls else ""
        return {
            "taskId": task.task_id, "model": task.model, "state": task.state,
            "param": json.dumps({"model": task.model, "input": json.dumps(task.input)}),
            "resultJson": result, "failCode": task.fail_code, "failMsg": task.fail_msg,
        }


class ResultFiles:
    """KIE's result file host: every URL on RESULT_HOST answers PNG bytes; requests recorded."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if request.url.host != RESULT_HOST:
            return httpx.Response(404)
        if request.url.path.endswith(".mp4"):
            return httpx.Response(200, content=MP4, headers={"Content-Type": "video/mp4"})
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


async def public_resolver(host: str, port: int) -> list[str]:
    """DNS without the network: the result host resolves to a public address."""
    return ["93.184.216.34"]


class RecordingBot:
    """Stands in for aiogram's Bot (ChatSender only calls it): records (time, method)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[datetime, object]] = []
        # Set by a test: called with each method; an exception it returns is raised instead of
        # recording the method (a send that always fails, for example).
        self.fail = None

    async def __call__(self, method):
        if self.fail is not None and (exc := self.fail(method)) is not None:
            raise exc
        self.sent.append((self.clock.now, method))
        return True

    @property
    def methods(self) -> list[object]:
        return [method for _, method in self.sent]
