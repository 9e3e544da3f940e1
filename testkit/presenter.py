"""PlainPresenter: English texts without buttons, for tests that drive the pipeline without the
conversation layer (the product always runs handlers.build_presenter())."""

from __future__ import annotations

from typing import Any

from bot.presenter import CAPTION_LIMIT, TEXT_LIMIT, Rendered, trim
from storage.models import Generation, GenerationStatus

_STATUS_WORDS = {
    GenerationStatus.queued: "Waiting in line",
    GenerationStatus.submit_unknown: "Waiting for KIE to confirm the task",
    GenerationStatus.generating: "Generating",
    GenerationStatus.storing: "Saving the result",
    GenerationStatus.succeeded: "Done",
    GenerationStatus.failed: "Failed",
}


def _elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}:{secs:02d}"


class PlainPresenter:
    """English texts without buttons."""

    def status(
        self, generation: Generation, *, language: str | None, position: int | None,
        elapsed_s: float,
    ) -> Rendered:
        word = _STATUS_WORDS.get(generation.status, generation.status)
        lines = [f"{generation.model_key}: {word} ({_elapsed(elapsed_s)})"]
        if generation.status == GenerationStatus.queued and position:
            lines.append(f"Place in line: {position}")
        return Rendered(trim("\n".join(lines), TEXT_LIMIT))

    def result_caption(self, generation: Generation, *, language: str | None) -> str:
        return trim(f"{generation.model_key}\n{generation.prompt}".strip(), CAPTION_LIMIT)

    def result_markup(self, generation: Generation, *, language: str | None) -> Any:
        return None

    def failure(self, generation: Generation, *, language: str | None) -> Rendered:
        reason = generation.error or "the generation failed"
        text = f"{generation.model_key}: {reason}."
        if generation.cost:
            text += f" {generation.cost}⭐ refunded."
        return Rendered(trim(text, TEXT_LIMIT))

    def stage_alert(self, generation: Generation, *, stage: str, reason: str, attempts: int,
                    max_attempts: int, quiet_minutes: int, language: str | None) -> str:
        return trim(f"stage {stage} keeps failing on generation {generation.id} "
                    f"(user {generation.user_id}), attempt {attempts} of {max_attempts}: {reason}",
                    TEXT_LIMIT)

    def link_instead(self, generation: Generation, url: str, *, language: str | None) -> Rendered:
        return Rendered(
            trim(f"{generation.model_key}: the file is too big for Telegram. Download it here: {url}",
                 TEXT_LIMIT)
        )
