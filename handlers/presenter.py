"""The pipeline's words in the user's language, with the status and result buttons."""

from __future__ import annotations

from collections.abc import Mapping

from aiogram.types import InlineKeyboardMarkup

from bot.presenter import CAPTION_LIMIT, TEXT_LIMIT, Rendered, trim
from bot.services.generation import LABEL_KEY
from handlers import keyboards
from handlers.failures import failure_text
from handlers.texts import tr
from bot.services.followups import FollowupOffers
from kie_client.catalog import Catalog, Kind
from storage.models import Generation, GenerationStatus

_PROMPT_IN_STATUS = 300
# A status line per status after the queue; a status added later reads as "generating".
_STATUS_LINES = {f"st_{status.value}" for status in GenerationStatus
                 if status is not GenerationStatus.queued}


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{secs:02d}"


class ConversationPresenter:
    """Implements bot.presenter.Presenter. `names` maps model keys to display names."""

    def __init__(self, names: Mapping[str, str] | None = None,
                 followups: FollowupOffers | None = None) -> None:
        self._names = dict(names or {})
        self._followups = followups  # None: the plain Again / Original / Animate buttons

    def _name(self, generation: Generation) -> str:
        return self._names.get(generation.model_key, generation.model_key)

    def status(self, generation: Generation, *, language: str | None, position: int | None,
               elapsed_s: float) -> Rendered:
        name, elapsed = self._name(generation), _elapsed(elapsed_s)
        status = str(generation.status)
        if status == GenerationStatus.queued:
            key = "st_queued" if position else "st_queued_nopos"
            head = tr(language, key, name=name, position=position or 0, elapsed=elapsed)
        else:
            key = f"st_{status}" if f"st_{status}" in _STATUS_LINES else "st_generating"
            head = tr(language, key, name=name, elapsed=elapsed)
        lines = [head]
        prompt = (generation.options or {}).get(LABEL_KEY) or generation.prompt  # a template's name
        if prompt:
            lines.append(tr(language, "st_prompt", prompt=trim(prompt, _PROMPT_IN_STATUS)))
        markup = None
        if status == GenerationStatus.queued:
            lines.append(tr(language, "st_cancel_hint"))
            markup = keyboards.queued_kb(language or "en", generation.id)
        return Rendered(trim("\n".join(lines), TEXT_LIMIT), markup)

    def result_caption(self, generation: Generation, *, language: str | None) -> str:
        prompt = (generation.options or {}).get(LABEL_KEY) or generation.prompt
        if not prompt:
            return trim(self._name(generation), CAPTION_LIMIT)
        return trim(tr(language, "caption", name=self._name(generation), prompt=prompt), CAPTION_LIMIT)

    def result_markup(self, generation: Generation, *,
                      language: str | None) -> InlineKeyboardMarkup:
        if self._followups is not None:
            return self.followup_markup(generation, language=language)
        return keyboards.result_kb(
            language or "en", generation.id, is_image=generation.kind == Kind.IMAGE
        )

    def followup_markup(self, generation: Generation, *, language: str | None,
                        variants: tuple[int, ...] = ()) -> InlineKeyboardMarkup:
        """Every follow-up on sale for this result, priced by the live catalog."""
        menu = self._followups or FollowupOffers(Catalog())
        return keyboards.followup_kb(
            language or "en", generation.id, again_price=menu.again_price(generation),
            animate_price=menu.animate_price(generation), offers=tuple(menu.offers(generation)),
            variants=variants)

    def variants_note(self, made: list[Generation], failed: list[Generation], *,
                      language: str | None) -> Rendered:
        """After a variant order's album: what was made (and refunded), numbered buttons that
        open each picture with its own follow-ups, and the follow-ups of the first."""
        name, n = self._name(made[0]), len(made) + len(failed)
        if failed:
            text = tr(language, "var_note_partial", made=len(made), n=n, name=name,
                      failed=len(failed), cost=sum(g.cost for g in failed))
        else:
            text = tr(language, "var_note", n=n, name=name)
        markup = self.followup_markup(made[0], language=language,
                                      variants=tuple(g.id for g in made))
        return Rendered(trim(text, TEXT_LIMIT), markup)

    def variants_failed(self, made: list[Generation], failed: list[Generation], *,
                        language: str | None) -> Rendered:
        lead = failed[0]
        reason = (failure_text(language, lead.error, lead.fail_code)
                  if lead.error else tr(language, "failure_default"))
        text = tr(language, "var_failed_all", name=self._name(lead), n=len(failed),
                  reason=reason, cost=sum(g.cost for g in failed))
        return Rendered(trim(text, TEXT_LIMIT), keyboards.menu_only_kb(language or "en"))

    def failure(self, generation: Generation, *, language: str | None) -> Rendered:
        reason = (failure_text(language, generation.error, generation.fail_code)
                  if generation.error else tr(language, "failure_default"))
        if generation.cost:
            text = tr(language, "failure", name=self._name(generation), reason=reason, cost=generation.cost)
        else:
            text = tr(language, "failure_free", name=self._name(generation), reason=reason)
        return Rendered(trim(text, TEXT_LIMIT), keyboards.menu_only_kb(language or "en"))

    def stage_alert(self, generation: Generation, *, stage: str, reason: str, attempts: int,
                    max_attempts: int, quiet_minutes: int, language: str | None) -> str:
        text = tr(language, "adm_stage_alert", stage=stage, generation=generation.id,
                  user_id=generation.user_id, name=self._name(generation), attempts=attempts,
                  max_attempts=max_attempts, reason=reason, minutes=quiet_minutes)
        return trim(text, TEXT_LIMIT)

    def link_instead(self, generation: Generation, url: str, *, language: str | None) -> Rendered:
        text = tr(language, "link_instead", name=self._name(generation), url=url)
        return Rendered(trim(text, TEXT_LIMIT), self.result_markup(generation, language=language))

