"""configure_logging: LOG_FORMAT=json lines (redacted like text ones), quiet library loggers,
LOG_LEVEL honoured."""

from __future__ import annotations

import io
import threading
import json
import logging

import pytest

from bot.logging import CHATTY_LOGGERS, JsonFormatter, configure_logging, install_redaction, kv

SECRET = "kie-key-0123456789abcdef"
BOT_TOKEN = "123456:AAE-secret-part-xyz"


@pytest.fixture
def logs():
    """The process's logging as configure_logging leaves it, restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level,
             {name: logging.getLogger(name).level for name in CHATTY_LOGGERS})
    handle = None

    def configure(level: str = "INFO", fmt: str = "json") -> io.StringIO:
        nonlocal handle
        stream = io.StringIO()
        configure_logging(level, fmt=fmt, stream=stream)
        handle = handle or install_redaction([SECRET, BOT_TOKEN])
        return stream

    yield configure
    if handle is not None:
        handle.uninstall()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_kv_fields_as_keys_and_mask_secrets(logs):
    stream = logs("INFO", "json")
    log = logging.getLogger("bot.pipeline")
    log.info(kv("createTask started", generation=42, model="seedream_45_t2i", attempt=1.5,
                url=f"https://x.test/kie/callback/42?token=abc123DEF&k={SECRET}", level="x"))
    log.warning("plain %s message with %s", "formatted", SECRET)
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage failed")
    except RuntimeError:
        logging.getLogger("aiogram.dispatcher").exception(kv("update failed", update=7))
    first, second, third = lines(stream)
    assert first["event"] == "createTask started" and first["logger"] == "bot.pipeline"
    assert (first["generation"], first["model"], first["attempt"]) == (42, "seedream_45_t2i", 1.5)
    assert first["field_level"] == "x" and first["level"] == "INFO"  # no clobbered keys
    assert first["url"] == "https://x.test/kie/callback/42?token=***&k=***"
    assert first["ts"].endswith("+00:00")
    assert second["msg"] == "plain formatted message with ***" and "event" not in second
    assert third["level"] == "ERROR" and third["update"] == 7
    assert "RuntimeError" in third["exc"] and "/bot***/sendMessage" in third["exc"]
    text = stream.getvalue()
    assert SECRET not in text and "secret-part" not in text and "abc123DEF" not in text


def test_library_loggers_are_quiet_at_info_and_speak_at_debug(logs):
    stream = logs("INFO", "text")
    for name in ("httpx", "aiohttp.access", "aiogram.event", "apscheduler.scheduler",
                 "sqlalchemy.engine.Engine"):
        logging.getLogger(name).info("chatter from %s", name)
    logging.getLogger("httpx").warning("httpx trouble")
    logging.getLogger("kie_client").info("kie GET /api/v1/jobs/recordInfo -> 200")
    logging.getLogger("bot.jobs").debug("not at INFO")
    text = stream.getvalue()
    assert "chatter" not in text and "not at INFO" not in text
    assert "httpx trouble" in text and "recordInfo -> 200" in text
    assert "level=INFO logger=kie_client" in text  # the text format stays as it was

    stream = logs("DEBUG", "text")
    logging.getLogger("httpx").info("HTTP Request: GET https://api.kie.ai")
    logging.getLogger("bot.jobs").debug("debug now")
    assert "HTTP Request" in stream.getvalue() and "debug now" in stream.getvalue()

    stream = logs("WARNING", "json")
    logging.getLogger("bot.jobs").info("info hidden")
    logging.getLogger("bot.jobs").warning("warning shown")
    assert [entry["msg"] for entry in lines(stream)][-1] == "warning shown"
    assert "info hidden" not in stream.getvalue()


def test_json_fields_without_the_redaction_layer():
    record = logging.LogRecord("bot.jobs", logging.INFO, __file__, 1,
                               kv("jobs started", interval_s=5.0), None, None)
    entry = json.loads(JsonFormatter().format(record))  # made directly: no factory, no filter
    assert (entry["event"], entry["interval_s"], entry["msg"]) == (
        "jobs started", 5.0, "jobs started interval_s=5.0")


def test_background_lines_are_written_by_their_own_thread_masked_and_whole():
    """kiebot run writes log lines from a thread (configure_logging(background=True)): the
    lines come out in order, masked, kv() fields intact, tracebacks as text — written by the
    writer thread, never by the one that logged — and stop() writes out everything queued."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    writers: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writers.append(threading.current_thread().name)
            return super().write(text)

    stream = Recording()
    handle = None
    try:
        background = configure_logging("INFO", fmt="json", stream=stream, background=True)
        handle = install_redaction([SECRET])
        log = logging.getLogger("bot.pipeline")
        for i in range(50):
            log.info(kv("delivered", generation=i, url=f"https://x.test/?token={SECRET}"))
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            log.exception(kv("stage pass failed", stage="deliver"))
        background.stop()
        entries = lines(stream)
        assert [e["generation"] for e in entries[:50]] == list(range(50))
        assert entries[0]["url"] == "https://x.test/?token=***"
        assert entries[50]["event"] == "stage pass failed" and "RuntimeError" in entries[50]["exc"]
        assert SECRET not in stream.getvalue()
        assert writers and threading.main_thread().name not in writers
        # After stop() lines go straight to the stream again, nothing is left in a queue.
        log.info("after stop")
        assert lines(stream)[-1]["msg"] == "after stop"
    finally:
        if handle is not None:
            handle.uninstall()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
