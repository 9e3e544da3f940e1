"""What the pipeline shows users, behind a protocol so handlers can supply localized texts.

The pipeline decides *when* to show something; a Presenter decides *how it reads*. The
conversation layer's presenter (handlers/presenter.py) adds buttons and Russian; the tests' plain
English presenter lives with the other test doubles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from storage.models import Generation

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096


@dataclass(frozen=True)
class Rendered:
    text: str
    reply_markup: Any = None


def trim(text: str, limit: int) -> str:
    """Cut to Telegram's limit, marking the cut so a trimmed prompt is visibly incomplete."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class Presenter(Protocol):
    def status(
        self, generation: Generation, *, language: str | None, position: int | None,
        elapsed_s: float,
    ) -> Rendered: ...

    def result_caption(self, generation: Generation, *, language: str | None) -> str: ...

    def result_markup(self, generation: Generation, *, language: str | None) -> Any: ...

    def failure(self, generation: Generation, *, language: str | None) -> Rendered: ...

    def link_instead(self, generation: Generation, url: str, *, language: str | None) -> Rendered: ...

    def stage_alert(
        self, generation: Generation, *, stage: str, reason: str, attempts: int,
        max_attempts: int, quiet_minutes: int, language: str | None,
    ) -> str:
        """The admins' message about a row a stage keeps failing on (sent once per row)."""
        ...
