"""Optional error reporting to Sentry (SENTRY_DSN), with every secret scrubbed from events.

`kiebot run` calls `init_sentry` once per process when SENTRY_DSN is set; sentry-sdk is imported
only then. Events pass `scrub_event` before they leave: every string anywhere in the event
(exception values, log messages and breadcrumbs, request URLs and headers, tags, contexts) is
masked with the log redactor (bot/logging.py: the bot token, KIE key, callback and HMAC secrets,
the Supabase service-role key, database/Redis URL passwords, the DSN's own key, token-like URL
parts), and values under secret-sounding keys (authorization, cookie, password, token…) are
dropped whatever they hold. An ERROR log line with a traceback arrives with the (masked)
traceback text in `extra.traceback`. Nothing personal is sent: no default PII, no local variables of
frames (they hold prompts and keys), no request bodies (Telegram updates are users' messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from bot.logging import MASK, Redactor

_SECRET_KEY = re.compile(
    r"(?i)(authorization|cookie|passw|secret|token|api[-_]?key|apikey|dsn|signature|credential)"
)


def dsn_secrets(dsn: str) -> list[str]:
    """The DSN itself and its key(s): the public key is enough to send events as us."""
    parts = urlsplit(dsn)
    return [v for v in (dsn, parts.username, parts.password) if v]


def scrub(value: Any, redactor: Redactor, key: str | None = None) -> Any:
    """`value` with every string masked; values under secret-sounding keys replaced whole."""
    if key is not None and _SECRET_KEY.search(key) and isinstance(value, str | bytes | int):
        return MASK
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, redactor, k if isinstance(k, str) else None)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [scrub(v, redactor) for v in value]
        # [name, value] pairs (headers as Sentry sends some of them): judge by the name.
        if (len(items) == 2 and isinstance(value[0], str) and _SECRET_KEY.search(value[0])
                and isinstance(value[1], str)):
            items[1] = MASK
        return items if isinstance(value, list) else tuple(items)
    return value


def scrubber(secrets: Iterable[str | None]):
    """before_send / before_breadcrumb callbacks masking `secrets` (and token-like patterns)."""
    redactor = Redactor(secrets)

    def before_send(event: dict[str, Any], hint: dict[str, Any] | None) -> dict[str, Any]:
        # log.exception(): the redaction layer turned the record's traceback into (masked)
        # text, so Sentry's logging integration sees no exception; carry the text along.
        record = (hint or {}).get("log_record")
        traceback_text = getattr(record, "exc_text", None)
        if traceback_text and "exception" not in event:
            event.setdefault("extra", {})["traceback"] = traceback_text
        return scrub(event, redactor)

    def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None) -> dict[str, Any]:
        return scrub(crumb, redactor)

    return before_send, before_breadcrumb


def sentry_options(dsn: str, secrets: Iterable[str | None], *, environment: str | None = None,
                   release: str | None = None, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for sentry_sdk.init / sentry_sdk.Client (`extra`: e.g. a transport).
    PII stays off: send_default_pii is left at its default (False; the option is deprecated)."""
    before_send, before_breadcrumb = scrubber([*secrets, *dsn_secrets(dsn)])
    return dict(
        dsn=dsn, environment=environment, release=release,
        before_send=before_send, before_breadcrumb=before_breadcrumb,
        include_local_variables=False, max_request_body_size="never",
        traces_sample_rate=None, **extra,
    )


def init_sentry(dsn: str, secrets: Iterable[str | None], *, environment: str | None = None,
                release: str | None = None) -> None:
    """Report unhandled exceptions and ERROR log records of this process to Sentry."""
    import sentry_sdk

    sentry_sdk.init(**sentry_options(dsn, secrets, environment=environment, release=release))
