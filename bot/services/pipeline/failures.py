"""A stage that keeps failing on one row: back off, say it once, give up with one refund.

Passing trouble outside our control (KIE's file host down, Telegram unreachable, a KIE 5xx) is
deferred by the stages themselves and bounded by the expiry. What lands here is a failure the
stage did not expect or cannot cure by waiting a little — our own media store refusing writes
(a read-only MEDIA_DIR), a stored file that cannot be read, a row whose delivery always raises:

- each failure is ONE log line (stage, row, attempt n/N, error type, reason, where it was
  raised) — never a traceback per pass;
- the row waits `stage_backoff_s · 2^(n-1)` (capped) before its next attempt; the count, the
  reason and the "not before" (`next_poll_at`) are stored on the row, so a restart keeps them;
- after `stage_alert_after` failures the admins (ADMIN_IDS) get one message about the row
  (`generations.alerted_at` makes it once per row across passes, restarts and processes; one
  process also holds back alerts of the same stage and error for a while, so a read-only disk
  is one message, not one per row);
- a database outage is not counted (it is nobody's row's fault, and nothing can be written):
  one line, and the row comes back when its lease runs out;
- after `stage_max_attempts` the row is given up: a running one fails and is refunded once
  (the existing refund path); a succeeded one that could never be delivered fails and is
  refunded once (its files stay in the library); a failed one whose message could never be
  sent is recorded as delivered (the refund was already made).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiogram.methods import SendMessage
from storage.errors import DatabaseUnavailableError
from storage.models import Generation, GenerationStatus, Stage

from bot.logging import Redactor, kv
from bot.services.pipeline.context import CREATING

if TYPE_CHECKING:
    from bot.services.pipeline.context import Pipeline

log = logging.getLogger("bot.pipeline.failures")

# What the user is told when a row is given up (handlers/failures.py maps the phrase to the
# localized "a problem on our side" reason).
GAVE_UP_REASON = "a problem on our side kept it from finishing"
GAVE_UP_DELIVERY = "a problem on our side kept the result from being sent"
# One process tells the admins about one (stage, error type) at most this often.
ALERT_QUIET_S = 900.0

_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
_ROOT = Path(__file__).resolve().parents[3]


def backoff_seconds(attempt: int, base_s: float, cap_s: float) -> float:
    """The wait after the `attempt`-th failure (1-based): base, 2·base, 4·base … up to cap."""
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))


def describe(exc: BaseException, redactor: Redactor | None = None) -> str:
    """`Type: first line of the message` (≤ 200 characters), secrets and URL passwords masked."""
    message = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return (redactor or Redactor()).redact(text)[:200]


def raised_at(exc: BaseException) -> str:
    """`file:line` of the innermost frame in kiebot's own code (else the innermost of all):
    where to look, in one line instead of a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_ROOT) and "site-packages" not in path.parts:
            return f"{path.relative_to(_ROOT)}:{frame.lineno}"
    if not frames:
        return "?"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"


class StageFailures:
    """Counts, logs, alerts and gives up; see the module docstring."""

    def __init__(self, pipeline: Pipeline,
                 fail: Callable[[Generation, str, str | None], Awaitable[None]],
                 *, monotonic: Callable[[], float]) -> None:
        self.p = pipeline
        self._fail = fail
        self._monotonic = monotonic
        self._quiet_until: dict[tuple[str, str], float] = {}
        self._redactor = Redactor([pipeline.config.callback_secret])

    async def record(self, stage: Stage, g: Generation, exc: BaseException, *,
                     owner: str) -> None:
        """One failed attempt of `stage` on the claimed row `g` (the caller holds its lease)."""
        p = self.p
        config = p.config
        if isinstance(exc, DatabaseUnavailableError):
            # Not this row's fault, and nothing can be written now: one line, and the row comes
            # back when its lease runs out. Counting it would refund rows whose only trouble was
            # a database restart (and a delivery that reached the chat before the outage).
            log.warning(kv("stage failed: database unavailable", stage=stage, generation=g.id,
                           reason=describe(exc, self._redactor)))
            return
        attempts = g.stage_attempts + 1
        now = p.clock()
        reason = describe(exc, self._redactor)
        give_up = attempts >= config.stage_max_attempts
        # A given-up row that could not be settled (the database went away meanwhile) waits
        # the longest backoff before the next try.
        delay = backoff_seconds(attempts, config.stage_backoff_s, config.stage_backoff_cap_s)
        if give_up:
            delay = config.stage_backoff_cap_s
        counted = await p.repository.record_stage_failure(
            g.id, owner=owner, attempts=attempts, error=reason,
            retry_at=now + timedelta(seconds=delay), now=now)
        if not counted:
            # The row moved on (a transition dropped our lease) or another process has it now.
            log.info(kv("stage failed on a row no longer ours", stage=stage, generation=g.id,
                        error=type(exc).__name__))
            return
        log.warning(kv("stage failed", stage=stage, generation=g.id,
                       attempt=f"{attempts}/{config.stage_max_attempts}",
                       error=type(exc).__name__, reason=reason, at=raised_at(exc),
                       retry_in_s=None if give_up else f"{delay:g}"))
        if give_up or attempts >= config.stage_alert_after:
            await self._alert(stage, g, exc, reason, attempts=attempts, now=now)
        if give_up:
            await self._give_up(stage, g)

    async def _give_up(self, stage: Stage, claimed: Generation) -> None:
        p = self.p
        g = await p.repository.get_generation(claimed.id)
        if g is None:
            return
        if stage == Stage.deliver:
            if g.delivered_at is not None:
                return
            if g.status == GenerationStatus.succeeded:
                if await p.repository.fail_undelivered(g.id, error=GAVE_UP_DELIVERY,
                                                       now=p.clock()):
                    log.error(kv("gave up delivering; failed and refunded", generation=g.id,
                                 cost=g.cost))
                    p.kick(Stage.deliver)  # the failure message is another way to reach them
            elif g.status == GenerationStatus.failed:
                if await p.repository.mark_delivered(g.id, now=p.clock()):
                    log.error(kv("gave up telling the user; already refunded",
                                 generation=g.id))
            return
        if g.is_final:
            return
        if g.status == GenerationStatus.queued and g.kie_state == CREATING:
            # createTask may have reached KIE: never refund a task KIE may run. The submitter
            # moves such a row to submit_unknown on its next claim.
            log.error(kv("not giving up: createTask may have been sent", generation=g.id))
            return
        log.error(kv("gave up after repeated failures; failing", stage=stage, generation=g.id))
        await self._fail(g, GAVE_UP_REASON, None)

    async def _alert(self, stage: Stage, g: Generation, exc: BaseException, reason: str, *,
                     attempts: int, now: datetime) -> None:
        p = self.p
        if not p.config.admin_ids:
            return
        if not await p.repository.mark_alerted(g.id, now=now):
            return  # told already (another pass, process or restart)
        key = (str(stage), type(exc).__name__)
        clock = self._monotonic()
        if self._quiet_until.get(key, 0.0) > clock:
            log.info(kv("admin alert held back: same failure reported recently", stage=stage,
                        generation=g.id, error=type(exc).__name__))
            return
        self._quiet_until[key] = clock + ALERT_QUIET_S
        for admin_id in p.config.admin_ids:
            try:
                admin = await p.repository.get_user(admin_id)
                text = p.presenter.stage_alert(
                    g, stage=str(stage), reason=reason, attempts=attempts,
                    max_attempts=p.config.stage_max_attempts,
                    quiet_minutes=int(ALERT_QUIET_S // 60),
                    language=admin.language if admin else None)
                await p.sender.send(admin_id, SendMessage(chat_id=admin_id, text=text))
            except Exception as send_exc:  # an admin who never opened the chat, Telegram down
                log.warning(kv("admin alert not sent", admin=admin_id,
                               error=type(send_exc).__name__))
