"""`KieEmulator`: a local KIE.ai (market jobs, Veo 3.1's routes, the upload host, on one port) for
tests and the demo.

Follows kie-api.md §12. Responses are HTTP 200 with the real status in the body `code` unless
`mirror_http_status=True`. See faults.py for the fault knobs and the control routes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from kie_client.catalog import Kind, kie_schema, spec_for_kie_model
from .callbacks import CallbackAttempt, CallbackRetry, CallbackSender
from .faults import Faults, StateDelays
from .media import dimensions
from .tasks import EmulatedTask, ResultFile, kie_cost

_MISSING = object()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int | None = None  # body `code` of the answer (or HTTP status for files)
    at: float = 0.0  # emulator clock (monotonic) when the request arrived


@dataclass
class StoredFile:
    data: bytes
    mime_type: str
    file_name: str
    uploaded_at: str


@dataclass
class _Window:
    """Sliding-window counter (KIE: 20 creates / 10 s per account, 10 recordInfo / s per key)."""

    limit: int
    period: float
    hits: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        while self.hits and self.hits[0] <= now - self.period:
            self.hits.popleft()
        if len(self.hits) >= self.limit:
            return False
        self.hits.append(now)
        return True


class KieEmulator:
    """In-process KIE. Inspect `.tasks` (EmulatedTask by id), `.requests` (RecordedRequest per API
    call, control routes excluded), `.callbacks` (CallbackAttempt per delivery try), `.uploads`,
    `.credits` (Decimal, settable); steer with `.faults` (faults.py), `.callback_retry` (when a
failed callback is tried again) or `finish(task, fail=...)`;
    wait with `wait_final(task_id)` / `drain_callbacks()`. Neither key appears in its repr."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        hmac_key: str | None = None,
        delays: StateDelays | None = None,
        credits: float | Decimal = Decimal(1000),
        prices: Mapping[str, float | Decimal] | None = None,
        missing_field_code: int = 500,
        mirror_http_status: bool = False,
        create_limit: tuple[int, float] = (20, 10.0),
        record_limit: tuple[int, float] = (10, 1.0),
        callback_timeout: float = 15.0,
        callback_retries: int = 3,
        callback_backoff: float = 0.05,
        callback_max_backoff: float = 30.0,
        download_ttl: float = 20 * 60,
        include_update_time: bool = False,
        include_credits_consumed: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self.delays = delays or StateDelays()
        self.credits = Decimal(str(credits))
        self.prices = {k: Decimal(str(v)) for k, v in (prices or {}).items()}
        self.missing_field_code = missing_field_code
        self.mirror_http_status = mirror_http_status
        self.download_ttl = download_ttl
        self.include_update_time = include_update_time
        self.include_credits_consumed = include_credits_consumed
        self.clock = clock
        self.wall_clock = wall_clock
        self.faults = Faults()
        self.tasks: dict[str, EmulatedTask] = {}
        self.uploads: dict[str, StoredFile] = {}
        self.requests: list[RecordedRequest] = []
        self.download_links: dict[str, tuple[str, str, float]] = {}
        self._create_window = _Window(*create_limit)
        self._record_window = _Window(*record_limit)
        self._sender = CallbackSender(
            hmac_key=hmac_key, timeout=callback_timeout,
            retry=CallbackRetry(callback_retries, callback_backoff, callback_max_backoff),
            wall_clock=wall_clock,
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.base_url = ""

    def __repr__(self) -> str:  # neither the API key nor the HMAC key
        return f"KieEmulator(base_url={self.base_url!r}, tasks={len(self.tasks)})"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> KieEmulator:
        from .app import build_app  # late: app imports this module for typing only

        self._stopping = asyncio.Event()
        await self._sender.start()
        self._runner = web.AppRunner(build_app(self), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound_port = sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound_port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._sender.close()

    async def __aenter__(self) -> KieEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def market_url(self) -> str:
        return self.base_url

    @property
    def upload_url(self) -> str:
        return self.base_url

    @property
    def files_url(self) -> str:
        return f"{self.base_url}/files"

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        return self._sender.log

    @property
    def callback_retry(self) -> CallbackRetry:
        """The retry schedule for callbacks sent from now on (see CallbackRetry)."""
        return self._sender.retry

    @callback_retry.setter
    def callback_retry(self, retry: CallbackRetry) -> None:
        self._sender.retry = retry

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {self._api_key}".encode())

    def reply(self, code: int, msg: str, data: Any = _MISSING, *, upload: bool = False) -> web.Response:
        body: dict[str, Any] = {"success": code == 200} if upload else {}
        body.update(code=code, msg=msg)
        if data is not _MISSING:
            body["data"] = data
        return web.json_response(body, status=code if self.mirror_http_status else 200)

    def allow_create(self) -> bool:
        return self._create_window.allow(self.clock())

    def allow_record(self) -> bool:
        return self._record_window.allow(self.clock())

    async def hang(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- tasks -------------------------------------------------------------------------------
    def price_of(self, model: str, input: dict[str, Any]) -> Decimal:
        return self.prices.get(model, kie_cost(model, input))

    def create_task(self, model: str, input: dict[str, Any], callback_url: str | None, *,
                    api: str = "market") -> EmulatedTask:
        """Register a validated task, charge it and start its lifecycle. `api` is the shape it
        came through (market or veo): how recordInfo and the callback show it."""
        faults = self.faults
        fail = model in faults.fail_models or faults.fail_next > 0
        if faults.fail_next > 0 and model not in faults.fail_models:
            faults.fail_next -= 1
        fail_code, fail_msg = (faults.fail_code, faults.fail_msg) if fail else (None, None)
        if not fail and self._missing_upload(model, input):
            # Real KIE fails a task whose input image it cannot fetch; catching a reference to a
            # never-uploaded file here exposes upload bugs in the caller.
            fail, fail_code, fail_msg = True, "422", "Failed to download the input image"
        cost = self.price_of(model, input)
        self.credits -= cost
        task = EmulatedTask(
            task_id=secrets.token_hex(16), model=model, input=input, callback_url=callback_url,
            create_time_ms=int(self.wall_clock() * 1000), cost=cost, fail=fail,
            fail_code=fail_code, fail_msg=fail_msg,
            files=[_result_file(model, input)],
            result_base=(faults.foreign_result_base or self.base_url).rstrip("/") + "/files/r",
            large_result_bytes=faults.large_result_bytes, api=api,
        )
        self.tasks[task.task_id] = task
        self._snapshot(task)
        self.spawn(self._run(task))
        return task

    def add_held_task(self, model: str, input: dict[str, Any], callback_url: str | None) -> EmulatedTask:
        """A task as if created earlier and now `generating`, free of charge and held there until
        `finish()` (the benchmark seeds thousands of these; no lifecycle timer runs)."""
        task = EmulatedTask(
            task_id=secrets.token_hex(16), model=model, input=input, callback_url=callback_url,
            create_time_ms=int(self.wall_clock() * 1000), cost=Decimal(0), state="generating",
            files=[_result_file(model, input)], result_base=self.base_url.rstrip("/") + "/files/r",
            large_result_bytes=self.faults.large_result_bytes,
        )
        self.tasks[task.task_id] = task
        self._snapshot(task)
        return task

    def _missing_upload(self, model: str, input: dict[str, Any]) -> bool:
        """True when an input image URL names an upload on this emulator that does not exist."""
        urls = []
        for name in kie_schema(model).urls:  # image and audio fields alike
            value = input.get(name)
            urls += value if isinstance(value, list) else [value] if value else []
        ours = urlsplit(self.base_url).netloc
        for url in urls:
            parts = urlsplit(str(url))
            if parts.netloc == ours and parts.path.startswith("/files/kieai/"):
                if parts.path[len("/files/"):] not in self.uploads:
                    return True
        return False

    def _snapshot(self, task: EmulatedTask) -> None:
        task.update_time_ms = int(self.wall_clock() * 1000)
        task.snapshots.append((self.clock(), self.record(task)))

    def record(self, task: EmulatedTask) -> dict[str, Any]:
        return task.record(
            include_update_time=self.include_update_time, include_credits_consumed=self.include_credits_consumed
        )

    def visible_record(self, task: EmulatedTask) -> dict[str, Any]:
        """What recordInfo shows, honouring the `record_lag` fault."""
        cutoff = self.clock() - self.faults.record_lag
        shown = task.snapshots[0][1]
        for at, data in task.snapshots:
            if at <= cutoff:
                shown = data
        return shown

    async def _run(self, task: EmulatedTask) -> None:
        if self.delays.waiting:
            await asyncio.sleep(self.delays.waiting)
        for state, delay in (("queuing", self.delays.queuing), ("generating", self.delays.generating)):
            if delay is None or task.is_final:
                continue
            task.state = state
            self._snapshot(task)
            await asyncio.sleep(delay)
        if not task.is_final:
            self.finish(task, fail=task.fail)

    def finish(self, task: EmulatedTask, *, fail: bool, fail_code: str | None = None, fail_msg: str | None = None) -> None:
        """Complete a task now (also usable from tests) and send its callback."""
        if task.is_final:
            return
        task.state = "fail" if fail else "success"
        task.complete_time_ms = int(self.wall_clock() * 1000)
        if fail:
            task.fail_code = fail_code or task.fail_code or self.faults.fail_code
            task.fail_msg = fail_msg or task.fail_msg or self.faults.fail_msg
            self.credits += task.cost  # failed tasks are not billed (GUESS: KIE does not say)
        self._snapshot(task)
        if task.callback_url:
            if self.faults.drop_callbacks > 0:
                self.faults.drop_callbacks -= 1
                self._sender.record_drop(task.task_id, task.callback_url)
            else:
                self.spawn(
                    self._sender.send(
                        task.task_id, task.callback_url, self.record(task),
                        copies=self.faults.callback_copies, delay=self.faults.callback_delay,
                    )
                )

    async def wait_final(self, task_id: str, timeout: float = 10.0) -> EmulatedTask:
        """Test helper: wait until the task reached success or fail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.tasks[task_id].is_final:
            if loop.time() > deadline:
                raise TimeoutError(f"task {task_id} still {self.tasks[task_id].state}")
            await asyncio.sleep(0.01)
        return self.tasks[task_id]

    async def drain_callbacks(self) -> None:
        """Test helper: wait for every pending callback delivery (and lifecycle) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _result_file(model: str, input: dict[str, Any]) -> ResultFile:
    spec = spec_for_kie_model(model)
    ratio = input.get("aspect_ratio")
    if spec.kind == Kind.IMAGE:
        width, height = dimensions(ratio or "1:1")
        return ResultFile("0.png", "image/png", width, height)
    # i2v models take no aspect_ratio; KIE follows the input image, we pick landscape. Veo clips
    # are 8 s.
    if ratio not in (None, "1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "2:3", "3:2"):
        ratio = "16:9"  # "adaptive", "Auto": the emulator has no input image to follow
    width, height = dimensions(ratio or "16:9", even=True)
    duration = int(input["duration"]) if str(input.get("duration", "")).isdigit() else 5
    if spec.api == "veo":
        duration = 8
    return ResultFile("0.mp4", "video/mp4", width, height, duration)
