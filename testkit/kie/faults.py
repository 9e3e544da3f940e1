"""Fault knobs and timing for the emulator.

`Faults` fields (all settable in-process, `emulator.faults.fail_next = 1`, or from another process
with `POST /_emulator/faults {"fail_next": 1}`; `POST /_emulator/faults/reset` restores defaults).
Every knob applies alike to Market tasks and to Veo tasks (`/api/v1/veo/generate` counts as a
createTask; recordInfo means Veo's record-info too):

- `fail_next` (int): the next N tasks end in `fail` with `fail_code`/`fail_msg`.
- `fail_models` (set of KIE model ids): every task of these models fails.
- `fail_code` / `fail_msg`: what failed tasks report (default "500" / "Internal server error").
- `drop_callbacks` (int): the next N completion callbacks are never sent.
- `callback_copies` (int): each callback is POSTed this many times, concurrently (duplicates).
- `callback_delay` (float s): wait this long after completion before sending the callback.
- `create_errors` (int) with `create_error_code` (429 or 500): the next N createTask calls answer
  that error and create nothing.
- `hang_creates` (int) with `hang_seconds` (float): the next N createTask calls DO create the task
  (it runs and calls back) but the response is held for `hang_seconds`, past a client's timeout.
- `expire_results` (bool): original result URLs answer 403; download-url still hands out fresh
  working links.
- `record_lag` (float s): recordInfo reports the task as it was this many seconds ago.
- `large_result_bytes` (int): tasks created while set serve results padded to about N bytes
  (still valid PNG/MP4; streamed, not held in memory).
- `foreign_result_base` (str|None): tasks created while set list result URLs on this base URL
  (e.g. "http://localhost:PORT", which reaches the emulator under another host name).
- `chat_errors` (int) with `chat_error_code` (e.g. 500, 429, 401): the next N chat completions
  (routes_chat.py) answer that error.
- `hang_chats` (int): the next N chat completions are held for `hang_seconds` before answering,
  past a client's timeout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class StateDelays:
    """Seconds spent in each state before moving on; None skips the state (live KIE was seen going
    straight from waiting to success)."""

    waiting: float | None = 0.2
    queuing: float | None = 0.2
    generating: float | None = 0.2


@dataclass
class Faults:
    fail_next: int = 0
    fail_models: set[str] = field(default_factory=set)
    fail_code: str = "500"
    fail_msg: str = "Internal server error"
    drop_callbacks: int = 0
    callback_copies: int = 1
    callback_delay: float = 0.0
    create_errors: int = 0
    create_error_code: int = 429
    hang_creates: int = 0
    hang_seconds: float = 30.0
    expire_results: bool = False
    record_lag: float = 0.0
    large_result_bytes: int = 0
    foreign_result_base: str | None = None
    chat_errors: int = 0
    chat_error_code: int = 500
    hang_chats: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fail_models"] = sorted(self.fail_models)
        return data

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update from JSON; unknown names or wrong types raise ValueError."""
        types = {f.name: f for f in fields(self)}
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in types:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(types)}")
            current = getattr(self, name)
            if name == "fail_models":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("fail_models must be a list of model ids")
                value = set(value)
            elif name == "foreign_result_base":
                if value is not None and not isinstance(value, str):
                    raise ValueError("foreign_result_base must be a URL string or null")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{name} must be a number ≥ 0")
                if isinstance(current, int) and not float(value).is_integer():
                    raise ValueError(f"{name} must be a whole number")
                value = type(current)(value)
            elif not isinstance(value, type(current)):
                raise ValueError(f"{name} must be a {type(current).__name__}")
            staged[name] = value
        for name, value in staged.items():
            setattr(self, name, value)
