"""No secret ever reaches a log line, whoever logs it (us, aiogram, aiohttp, httpx)."""

from __future__ import annotations

import io
import logging

from bot.logging import install_redaction, kv
from kie_client.callbacks import make_callback_token
from tests.e2e.pipeline.helpers import make_user, plain_stack, start, wait_final

HMAC_KEY = "hmac-key-for-the-log-scan-0123456789"


async def test_full_run_at_debug_leaks_no_secret(tmp_path, caplog):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        async with plain_stack(tmp_path, hmac_key=HMAC_KEY) as stack:
            await make_user(stack)
            started = await start(stack)
            g = await wait_final(stack, started.generation.id)
            assert g.status == "succeeded"
            # Something that logs a URL with the bot token and a callback URL with its token.
            logging.getLogger("probe").debug("GET %s/bot%s/getMe", stack.telegram.base_url, stack.bot_token)
            logging.getLogger("probe").info("url %s", stack.app.generations.pipeline.config.callback_url(g.id))
            secrets = {
                "bot token": stack.bot_token,
                "bot token secret part": stack.bot_token.partition(":")[2],
                "KIE key": stack.kie_api_key,
                "callback secret": stack.callback_secret,
                "HMAC key": HMAC_KEY,
                "callback token": make_callback_token(stack.callback_secret, g.id),
                "webhook secret": stack.app.telegram_secret,
            }
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue() + "\n" + caplog.text
    assert "createTask started model=seedream_45_t2i" in text
    assert f"callbacks received count=1 storing=1 generations={g.id}" in text
    assert "stored 1 file" in text and "delivered" in text
    assert "token=***" in text
    for name, value in secrets.items():
        assert value not in text, f"{name} leaked into the logs"


def test_redaction_covers_arguments_tracebacks_and_token_queries(caplog):
    handle = install_redaction(["super-secret-value-123"])
    try:
        log = logging.getLogger("probe.redaction")
        with caplog.at_level(logging.DEBUG):
            log.info("key is %s", "super-secret-value-123")
            log.info(kv("cb", url="https://x.example/kie/callback/5?token=abcDEF123&x=1"))
            log.info("Authorization: Bearer sk-abcdef0123456789")
            try:
                raise RuntimeError("failed with super-secret-value-123")
            except RuntimeError:
                log.exception("boom")
        text = caplog.text
        assert "super-secret-value-123" not in text
        assert "abcDEF123" not in text and "token=***&x=1" in text
        assert "sk-abcdef0123456789" not in text
        assert "RuntimeError" in text  # the traceback itself survives, masked
    finally:
        handle.uninstall()
    assert logging.getLogRecordFactory().__name__ != "factory"


def test_kv_quotes_values_with_spaces():
    assert kv("stored 1 file", generation=12, reason='a "b" c', none=None) == (
        'stored 1 file generation=12 reason="a \\"b\\" c"'
    )
