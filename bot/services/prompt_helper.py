"""The prompt helper: "✨ Improve" rewrites a prompt into a rich English one through KIE's chat.

Money: when the operator prices it (PROMPT_HELPER_PRICE > 0) a press is charged once per press
key — the ledger's unique idempotency key decides (Repository.assist_charge), so a triple tap or
a replayed update charges once — and a failed chat refunds that key once (assist_refund).
A failure of any kind (KIE error, timeout, empty answer) is an outcome, never an exception: the
user keeps the original prompt and Generate works as before.

Abuse: at most `per_minute` presses per user in any 60 s, counted in this process (a chat's
updates are handled in one process at a time, README "Telegram updates"); a press whose key was
already answered is served from the draft by the handler and never reaches here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.logging import kv
from kie_client.catalog import Kind, ModelSpec, OptionSpec
from kie_client.chat import ChatClient
from kie_client.errors import KieError
from storage.errors import InsufficientBalanceError

log = logging.getLogger("kiebot.prompt_helper")

# Option names (or KIE fields) of models that improve or translate the prompt themselves: Veo
# enableTranslation, Wan prompt_extend / enable_prompt_expansion, Hailuo prompt_optimizer,
# Ideogram expand_prompt, Flux Kontext promptUpsampling. Such a model gets its switch instead.
NATIVE_SWITCHES = frozenset({"enableTranslation", "prompt_extend", "enable_prompt_expansion",
                             "prompt_optimizer", "expand_prompt", "promptUpsampling"})
WINDOW_S = 60.0

_SYSTEM = {
    Kind.IMAGE: ("You improve prompts for an AI image generator. Rewrite the user's prompt as one "
                 "rich, specific prompt in English (translate it if it is in another language): "
                 "subject, setting, style, lighting, composition, details."),
    Kind.VIDEO: ("You improve prompts for an AI video generator. Rewrite the user's prompt as one "
                 "rich, specific prompt in English (translate it if it is in another language): "
                 "subject, action and motion, setting, camera movement, lighting, mood."),
}
_RULES = (" Keep every detail the user gave and add nothing that contradicts it. Reply with the "
          "prompt only — no quotes, no preface, no explanation — in at most {limit} characters.")


@dataclass(frozen=True)
class Improved:
    text: str
    charged: int  # ⭐ taken by this call (0 when free or charged before)


@dataclass(frozen=True)
class Failed:
    refunded: int  # ⭐ given back (0 when free)


@dataclass(frozen=True)
class Limited:
    per_minute: int


@dataclass(frozen=True)
class Short:
    price: int
    balance: int


Outcome = Improved | Failed | Limited | Short


def native_switch(spec: ModelSpec) -> OptionSpec | None:
    """The model's own prompt-improving switch (a bool option), if it has one."""
    for option in spec.options:
        if option.kind == "bool" and (option.name in NATIVE_SWITCHES
                                      or option.kie_field in NATIVE_SWITCHES):
            return option
    return None


class PromptHelper:
    def __init__(self, chat: ChatClient, repository: Any, *, model: str, price: int = 0,
                 per_minute: int = 3, timeout_s: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chat = chat
        self.repository = repository
        self.model = model
        self.price = int(price)
        self.per_minute = int(per_minute)
        self.timeout_s = float(timeout_s)
        self._clock = clock
        self._presses: dict[int, deque[float]] = {}

    def offers_improve(self, spec: ModelSpec) -> bool:
        return spec.prompt and native_switch(spec) is None

    def _allow(self, user_id: int) -> bool:
        now = self._clock()
        window = self._presses.setdefault(user_id, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self._presses) > 10_000:  # forget users whose window emptied
            for uid in [u for u, w in self._presses.items() if not w]:
                del self._presses[uid]
        return True

    async def improve(self, *, user_id: int, prompt: str, kind: Kind, key: str,
                      max_length: int) -> Outcome:
        """Rewrite `prompt` for a model of `kind`; `key` names this press (charged once)."""
        if not self._allow(user_id):
            return Limited(self.per_minute)
        charged = 0
        if self.price > 0:
            try:
                # False: this press was charged before (a replayed update, or a repeat after
                # its refund): the answer is given without a second charge.
                if await self.repository.assist_charge(user_id, self.price, key=key):
                    charged = self.price
            except InsufficientBalanceError as exc:
                return Short(self.price, exc.balance)
        text = await self._ask(prompt, kind, max_length)
        if text is None:
            refunded = (await self.repository.assist_refund(user_id, key=key)
                        if self.price > 0 else 0)
            return Failed(refunded)
        return Improved(text, charged)

    async def _ask(self, prompt: str, kind: Kind, max_length: int) -> str | None:
        messages = [
            {"role": "system", "content": _SYSTEM[kind] + _RULES.format(limit=max_length)},
            {"role": "user", "content": prompt},
        ]
        started = self._clock()
        try:
            answer = await asyncio.wait_for(
                self.chat.complete(self.model, messages, max_tokens=1024), self.timeout_s)
        except (KieError, asyncio.TimeoutError) as exc:
            log.warning(kv("prompt_helper_failed", error=type(exc).__name__,
                           seconds=round(self._clock() - started, 2)))
            return None
        text = clean(answer.text, max_length)
        if not text:
            log.warning(kv("prompt_helper_failed", error="empty"))
        return text or None


def clean(text: str, limit: int) -> str:
    """The model's answer as a prompt: outer quotes and whitespace runs gone, cut at a word
    boundary to the model's prompt limit."""
    text = " ".join(text.split())
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`«»“”":
        text = text[1:-1].strip()
    if text[:1] in "«“" and text[-1:] in "»”":
        text = text[1:-1].strip()
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text.rstrip(" ,;")
