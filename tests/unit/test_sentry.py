"""SENTRY_DSN: a real sentry_sdk client with a capturing transport (no network) sends events
with every secret scrubbed, wherever in the event it appeared."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.transport import Transport

import logging

from sentry_sdk.integrations.logging import EventHandler

from bot.logging import Redactor, install_redaction
from bot.sentry import dsn_secrets, scrub, sentry_options

DSN = "https://5f1e0c2b9a8d47e6b3c1d2e3f4a5b6c7@o12345.ingest.sentry.io/678"
BOT_TOKEN = "7000001:AAHx-telegram-secret-part"
KIE_KEY = "kie-live-key-1f2e3d4c5b6a"
CALLBACK_SECRET = "callback-secret-0123456789abcdef"
SERVICE_ROLE = "eyJhbGciOiJIUzI1NiJ9.service-role-payload.signature"
DB_PASSWORD = "pg-pass-w0rd-9876"
SECRETS = [BOT_TOKEN, BOT_TOKEN.partition(":")[2], KIE_KEY, CALLBACK_SECRET, SERVICE_ROLE,
           DB_PASSWORD]


class Capture(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list = []

    def capture_envelope(self, envelope) -> None:
        self.envelopes.append(envelope)


def test_events_leave_without_any_secret():
    transport = Capture()
    # Integrations off: they patch aiohttp and logging process-wide, and the scrubbing under
    # test sees the finished event whatever added to it.
    client = sentry_sdk.Client(**sentry_options(
        DSN, SECRETS, environment="test", release="kiebot@0",
        transport=transport, default_integrations=False, auto_enabling_integrations=False))
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            scope.set_tag("url", "https://bot.example/kie/callback/5?token=cb-token-abcdef")
            scope.set_extra("config", {"kie_api_key": "whatever-it-is", "note": f"key {KIE_KEY}",
                                       "database": f"postgresql://kiebot:{DB_PASSWORD}@db/kiebot"})
            scope.set_context("request", {
                "url": f"https://api.telegram.org/bot{BOT_TOKEN}/getMe",
                "headers": [["Authorization", "Bearer opaque-value-123456"],
                            ["X-Telegram-Bot-Api-Secret-Token", "webhook-derived-0987654321"],
                            ["Accept", "application/json"]],
            })
            sentry_sdk.add_breadcrumb(category="httplib", message=f"POST with {SERVICE_ROLE}",
                                      data={"sentry_key": DSN.split("@")[0]})
            try:
                raise RuntimeError(f"KIE refused {KIE_KEY}; callback secret {CALLBACK_SECRET}")
            except RuntimeError:
                sentry_sdk.capture_exception()
            sentry_sdk.capture_message(f"DSN in a message: {DSN}")
    finally:
        client.close()
    events = [e.get_event() for e in transport.envelopes if e.get_event() is not None]
    assert len(events) == 2
    exception = events[0]["exception"]["values"][0]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "KIE refused ***; callback secret ***"
    assert events[0]["environment"] == "test" and events[0]["release"] == "kiebot@0"
    assert events[0]["extra"]["config"]["kie_api_key"] == "***"
    assert events[0]["tags"]["url"].endswith("?token=***")
    headers = dict(events[0]["contexts"]["request"]["headers"])
    assert headers["Authorization"] == "***" and headers["Accept"] == "application/json"
    assert events[1]["message"] == "DSN in a message: ***"
    frames = exception["stacktrace"]["frames"]
    assert frames and not any("vars" in frame for frame in frames)  # no local variables
    body = b"".join(envelope.serialize() for envelope in transport.envelopes)
    for secret in [*SECRETS, "cb-token-abcdef", "opaque-value-123456",
                   "webhook-derived-0987654321", "5f1e0c2b9a8d47e6b3c1d2e3f4a5b6c7"]:
        assert secret.encode() not in body, secret


def test_scrub_masks_nested_values_and_keeps_the_rest():
    redactor = Redactor(["s3cr3t-value"])
    event = {"a": ["x s3cr3t-value y", ("password", "hunter2-long")], "n": 5,
             "nested": {"db_password": 123456, "ok": "plain", "token": {"inner": "kept"}}}
    assert scrub(event, redactor) == {
        "a": ["x *** y", ("password", "***")], "n": 5,
        "nested": {"db_password": "***", "ok": "plain", "token": {"inner": "kept"}},
    }
    assert dsn_secrets("https://pub:priv@sentry.example/1") == [
        "https://pub:priv@sentry.example/1", "pub", "priv"]


def test_an_error_log_line_arrives_with_its_masked_traceback():
    """As in `kiebot run`: the redaction layer is installed and ERROR records reach Sentry's
    logging handler (attached here to one logger, not process-wide)."""
    transport = Capture()
    client = sentry_sdk.Client(**sentry_options(
        DSN, SECRETS, transport=transport, default_integrations=False,
        auto_enabling_integrations=False))
    handle = install_redaction(SECRETS)
    log = logging.getLogger("probe.sentry")
    handler = EventHandler(level=logging.ERROR)
    log.addHandler(handler)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_client(client)
            try:
                raise ConnectionError(f"https://api.telegram.org/bot{BOT_TOKEN}/getMe refused")
            except ConnectionError:
                log.exception("stage pass failed with key %s", KIE_KEY)
            log.warning("not an event")
    finally:
        log.removeHandler(handler)
        handle.uninstall()
        client.close()
    [event] = [e.get_event() for e in transport.envelopes if e.get_event() is not None]
    assert event["logentry"]["message"] == "stage pass failed with key ***"
    assert "ConnectionError" in event["extra"]["traceback"]
    assert "/bot***/getMe" in event["extra"]["traceback"]
    body = b"".join(envelope.serialize() for envelope in transport.envelopes)
    for secret in SECRETS:
        assert secret.encode() not in body, secret
