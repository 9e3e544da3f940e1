"""The fakes' control APIs as the driver uses them (testkit/telegram/crowd.py, testkit/kie/bulk.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

# Bounds a hang only; the fakes answer control calls in milliseconds.
HTTP_TIMEOUT_S = 120.0
MEDIA_METHODS = ("sendPhoto", "sendVideo", "sendDocument", "sendAnimation", "sendMediaGroup")


class ControlError(RuntimeError):
    pass


class _Control:
    """A fake's control API over HTTP; any answer but 200 is a ControlError naming the fake."""

    fake = "the fake"

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT_S)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        r = await self.http.post(path, json=body)
        if r.status_code != 200:
            raise ControlError(f"{self.fake} {path}: {r.status_code} {r.text[:300]}")
        return r.json()


class TelegramControl(_Control):
    fake = "fake Telegram"

    async def create_users(self, first_id: int, count: int, language: str = "en") -> None:
        await self._post("/_fake/crowd/users", {"first_id": first_id, "count": count,
                                                "language_code": language})

    async def run_crowd(self, first_id: int, count: int, steps: list[dict[str, str]],
                        timeout: float = 120.0, *, user_ids: list[int] | None = None) -> int:
        body: dict[str, Any] = {"steps": steps, "timeout": timeout}
        body.update({"user_ids": user_ids} if user_ids else {"first_id": first_id, "count": count})
        return (await self._post("/_fake/crowd/run", body))["run"]

    async def crowd(self, run_id: int) -> dict[str, Any]:
        r = await self.http.get(f"/_fake/crowd/run/{run_id}")
        r.raise_for_status()
        return r.json()

    async def wait_crowd(self, run_id: int, poll: float = 0.1) -> dict[str, Any]:
        """Wait for the crowd to finish (each user's own steps bound the wait)."""
        while True:
            status = await self.crowd(run_id)
            if status["finished_at"] is not None:
                return status
            await asyncio.sleep(poll)

    async def stats(self, since: float = 0.0, methods: tuple[str, ...] = (),
                    contains: tuple[str, ...] = ()) -> dict[str, Any]:
        params: list[tuple[str, str]] = [("since", repr(since))]
        if methods:
            params.append(("methods", ",".join(methods)))
        params += [("contains", c) for c in contains]
        r = await self.http.get("/_fake/stats", params=params)
        r.raise_for_status()
        return r.json()

    async def flood_limits(self, **limits: float) -> dict[str, float]:
        return await self._post("/_fake/flood_limits", limits)

    async def wait_quiet(self, since: float, *, quiet: float = 0.5, limit: float = 120.0) -> dict[str, Any]:
        """Wait until the bot made no call for `quiet` seconds (the stragglers after a crowd);
        returns the last stats."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while True:
            s = await self.stats(since)
            last = s["calls"]["last_at"]
            if last is None or s["now"] - last >= quiet or loop.time() > end:
                return s
            await asyncio.sleep(quiet / 4)


class KieControl(_Control):
    fake = "KIE emulator"

    async def add_tasks(self, model: str, input: dict[str, Any], *, count: int | None = None,
                        callback_urls: list[str] | None = None) -> list[str]:
        body: dict[str, Any] = {"model": model, "input": input}
        if callback_urls is not None:
            body["callback_urls"] = callback_urls
        else:
            body["count"] = count
        return (await self._post("/_emulator/bulk/tasks", body))["task_ids"]

    async def finish(self, task_ids: list[str] | None = None) -> int:
        return (await self._post("/_emulator/bulk/finish", {"task_ids": task_ids}))["finished"]

    async def callback_bodies(self, task_ids: list[str]) -> dict[str, Any]:
        return (await self._post("/_emulator/bulk/callback_bodies", {"task_ids": task_ids}))["bodies"]

    async def stats(self, since: float = 0.0) -> dict[str, Any]:
        r = await self.http.get("/_emulator/stats", params={"since": repr(since)})
        r.raise_for_status()
        return r.json()

    async def set_credits(self, credits: float) -> None:
        await self._post("/_emulator/credits", {"credits": credits})
