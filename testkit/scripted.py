"""The scripted user the demo and the conversation tests share: wait for a text, tap a button when
it shows, wait for media. Every step waits on a condition of the fake's transcript (woken by its
state changes) and fails with what was expected, never after a blind sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STEP_TIMEOUT_S = 20.0


class StepNotSeen(AssertionError):
    """What the user should have seen next never showed up."""


def has_button(text: str) -> Callable[[list], bool]:
    def check(transcript: list) -> bool:
        return any(text == b for e in transcript if e.from_bot for row in e.buttons for b in row)
    return check


def last_text(needle: str) -> Callable[[list], Any]:
    """The newest bot message (edits applied) that contains `needle`, else None."""
    def check(transcript: list) -> Any:
        return next((e for e in reversed(transcript) if e.from_bot and needle in e.text), None)
    return check


def media_entries(user: Any) -> list:
    return [e for e in user.transcript if e.from_bot and e.media]


async def _wait(user: Any, condition: Callable[[list], Any], timeout: float, what: str) -> Any:
    try:
        return await user.wait_until(condition, timeout=timeout)
    except TimeoutError:
        raise StepNotSeen(what) from None


async def see(user: Any, needle: str, timeout: float = STEP_TIMEOUT_S) -> Any:
    """Wait until some bot message contains `needle`; return that transcript entry."""
    return await _wait(user, last_text(needle), timeout, f"the bot never showed {needle!r}")


async def see_button(user: Any, text: str, timeout: float = STEP_TIMEOUT_S) -> None:
    """Wait until a bot message shows the button (screens are edited after the answer)."""
    await _wait(user, has_button(text), timeout, f"no button {text!r} appeared")


async def tap(user: Any, text: str, timeout: float = STEP_TIMEOUT_S) -> Any:
    """Wait for the button, tap it; returns the callback answer."""
    await see_button(user, text, timeout)
    return await user.tap(text)


async def wait_media(user: Any, count: int, timeout: float = STEP_TIMEOUT_S) -> list:
    """Wait until at least `count` media messages arrived; return them all."""
    return await _wait(user, lambda t: len(media_entries(user)) >= count and media_entries(user),
                       timeout, f"fewer than {count} media messages arrived")
