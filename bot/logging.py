"""Structured key=value log lines and a redaction layer that keeps secrets out of every log.

`configure_logging(level, fmt=...)` writes them as text (`ts level=… logger=… event k=v…`) or,
with LOG_FORMAT=json, as one JSON object per line whose `kv()` fields are keys of their own.

Redaction is installed as a log-record factory rather than only as a filter on the root logger:
filters attached to a logger do not run for records propagated from child loggers (aiogram,
aiohttp, httpx), and handlers added later (pytest's caplog, an operator's file handler) would
otherwise bypass it. The factory sees every record the process creates, formats it once and
replaces the message, its arguments and any traceback text with the redacted version.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime

MASK = "***"

# Telegram puts the bot token into every method URL (/bot<id>:<secret>/sendMessage); KIE callback
# URLs carry ?token=<per-generation token>; HTTP clients may log Authorization headers.
_PATTERNS = (
    (re.compile(r"(?i)([?&;\s\"']token=)[^&\s\"'<>]+"), r"\1" + MASK),
    (re.compile(r"(?i)(secret_token=)[^&\s\"'<>]+"), r"\1" + MASK),
    (re.compile(r"/bot\d+:[A-Za-z0-9_-]+"), "/bot" + MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(?i)(x-telegram-bot-api-secret-token['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9_-]+"),
     r"\1" + MASK),
)
# Every pattern above needs one of these (lower-case) in the text: a line without any of them
# skips the regular expressions, which were most of the cost of a log line (5 subs on the
# message and on each kv() field: ~70 of ~140 µs per line).
_TRIGGERS = ("token", "/bot", "bearer")


class KvLine(str):
    """What kv() returns: the text line, still carrying its event and fields for JSON logs."""

    event: str
    fields: dict[str, object]


def kv(event: str, **fields: object) -> str:
    """`event key=value ...`; values with spaces or quotes are quoted so lines stay parseable."""
    parts = [event]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        if not text or any(c in text for c in " \t\n\"="):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    line = KvLine(" ".join(parts))
    line.event = event
    line.fields = {k: v for k, v in fields.items() if v is not None}
    return line


class Redactor:
    """Replaces known secret values and secret-bearing URL parts with ***."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._longest_first: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            for secret in secrets:
                # Very short values would mask ordinary words; real secrets are long.
                if secret and len(secret) >= 6:
                    self._secrets.add(secret)
            self._longest_first = tuple(sorted(self._secrets, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._longest_first:  # a tuple replaced whole by add(): no lock needed
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        if any(trigger in lowered for trigger in _TRIGGERS):
            for pattern, repl in _PATTERNS:
                text = pattern.sub(repl, text)
        return text


class RedactingFilter(logging.Filter):
    """Handler-level filter: rewrites a record in place so every formatter sees the masked text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record, self.redactor)
        return True


def _redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    if getattr(record, "_kiebot_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not hide the record; log its raw parts
        message = f"{record.msg!r} {record.args!r}"
    if isinstance(record.msg, KvLine):  # the JSON formatter's fields, masked the same way
        record.kv_event = redactor.redact(record.msg.event)
        record.kv_fields = {key: _redact_value(value, redactor)
                            for key, value in record.msg.fields.items()}
    record.msg = redactor.redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info))
        record.exc_text = redactor.redact(text.rstrip("\n"))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    record._kiebot_redacted = True  # type: ignore[attr-defined]


def _redact_value(value: object, redactor: Redactor) -> object:
    if isinstance(value, bool | int | float) and redactor.redact(str(value)) == str(value):
        return value  # numbers stay numbers in JSON
    return redactor.redact(str(value))


class RedactionHandle:
    """Undo handle returned by install_redaction (tests install and remove it per app)."""

    def __init__(self, redactor: Redactor, previous_factory, filt: RedactingFilter) -> None:
        self.redactor = redactor
        self._previous = previous_factory
        self._filter = filt
        self._active = True

    def uninstall(self) -> None:
        if not self._active:
            return
        self._active = False
        current = logging.getLogRecordFactory()
        if getattr(current, "_kiebot_redactor", None) is self.redactor:
            logging.setLogRecordFactory(self._previous)
        root = logging.getLogger()
        root.removeFilter(self._filter)
        for handler in root.handlers:
            handler.removeFilter(self._filter)


def install_redaction(secrets: Iterable[str | None]) -> RedactionHandle:
    """Mask `secrets` (and token-like URL parts) in every record created from now on."""
    redactor = Redactor(secrets)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        _redact_record(record, redactor)
        return record

    factory._kiebot_redactor = redactor  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    filt = RedactingFilter(redactor)
    root = logging.getLogger()
    root.addFilter(filt)
    for handler in root.handlers:
        handler.addFilter(filt)
    return RedactionHandle(redactor, previous, filt)


# Libraries that log every HTTP call, update or job run at INFO (each KIE call appeared twice:
# httpx's line and ours). Quiet unless LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("aiohttp.access", "httpx", "httpcore", "hpack", "aiogram.event",
                  "aiogram.dispatcher", "apscheduler", "sqlalchemy", "asyncio")
_RESERVED = frozenset({"ts", "level", "logger", "msg", "event", "exc", "stack"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg (the text line), and for kv()
    lines `event` plus each field as a key of its own; exc/stack for tracebacks. The record
    was masked when it was created (install_redaction), fields included."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event = getattr(record, "kv_event", None)
        fields = getattr(record, "kv_fields", {})
        if event is None and isinstance(record.msg, KvLine):  # no redaction layer installed
            event, fields = record.msg.event, record.msg.fields
        if event is not None:
            out["event"] = event
            for key, value in fields.items():
                out[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class _ResolvedQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: masked and resolved (message text,
    no arguments, traceback as text) — by the redaction layer when it is installed, here
    otherwise — so the JSON formatter still finds a kv() line's event and fields (the stock
    prepare() would flatten them into a string)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        _redact_record(record, _NO_SECRETS)
        return record


_NO_SECRETS = Redactor()


class BackgroundLines:
    """What configure_logging returns: stop() writes out what is queued and has later lines
    written directly again (a no-op when the lines were never in the background)."""

    def __init__(self, listener: logging.handlers.QueueListener | None = None,
                 queued: logging.Handler | None = None, direct: logging.Handler | None = None
                 ) -> None:
        self._listener = listener
        self._queued = queued
        self._direct = direct

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.stop()
        root = logging.getLogger()
        if self._queued in root.handlers and self._direct is not None:
            root.removeHandler(self._queued)
            root.addHandler(self._direct)


def configure_logging(level: str = "INFO", *, fmt: str = "text", stream=None,
                      background: bool = False) -> BackgroundLines:
    """Process-wide handler for `kiebot run`: one line per record (text or JSON), UTC
    timestamps; library loggers quiet below WARNING unless `level` is DEBUG.

    `background`: lines are written by a thread of their own (the standard library's
    QueueHandler and QueueListener), not on the event loop — a write to the pipe or socket
    behind stderr cost 0.2–0.6 ms on this project's 2-core machine, and the pipeline writes a
    few lines per generation. Call stop() on the returned handle before the process ends."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter(
            "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"
        )
        formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    for old in list(root.handlers):
        root.removeHandler(old)
    background_lines = BackgroundLines()
    if background:
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        listener = logging.handlers.QueueListener(lines, handler)
        queued = _ResolvedQueueHandler(lines)
        listener.start()
        root.addHandler(queued)
        background_lines = BackgroundLines(listener, queued, handler)
    else:
        root.addHandler(handler)
    root.setLevel(level)
    quiet = root.level > logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    return background_lines
