"""Process roles: a `kiebot run --role worker` started beside a webhook process (even without
PUBLIC_BASE_URL, which once meant "delete the webhook and poll") leaves the webhook alone, never
calls getUpdates, serves /healthz and /readyz only, and runs the pipeline the web process does not."""

from __future__ import annotations

import aiohttp
import pytest

from kiebot.app import build_app
from testkit.scripted import see, wait_media
from testkit.stack import LocalStack
from tests.conftest import free_port
from tests.e2e.conversation.conftest import start_image_flow

pytestmark = pytest.mark.slow


def _calls(stack, method: str, since: int = 0) -> int:
    return sum(1 for c in stack.telegram.calls[since:] if c.method.lower() == method.lower())


async def _webhook_url(stack) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.telegram.base_url}/bot{stack.bot_token}/getWebhookInfo") as r:
            return (await r.json())["result"]["url"]


async def test_a_worker_beside_a_webhook_process_keeps_the_webhook_and_runs_the_jobs(tmp_path):
    async with LocalStack(tmp_path, in_process=False, telegram_options={"chat_burst": 30},
                          settings={"SIGNUP_BONUS": "50"}) as stack:
        await stack.start_process(role="web")  # Telegram intake only: no pipeline jobs here
        url = await _webhook_url(stack)
        assert url.endswith("/tg/webhook")
        since = len(stack.telegram.calls)
        port = free_port()
        worker = await stack.start_child(role="worker", name="worker", env={
            "SERVER_PORT": str(port), "PUBLIC_BASE_URL": ""})

        # The worker serves /healthz and /readyz on its own port, and nothing else.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200 and (await r.json())["ok"] is True
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                ready = await r.json()
                assert r.status == 200, ready
                assert ready["checks"] == {"database": "ok", "media": "ok", "kie": "ok"}
                assert ready["inbox_unhandled"] == 0
            async with http.post(f"http://127.0.0.1:{port}/tg/webhook", json={}) as r:
                assert r.status == 404

        # A user's Generate goes in through the web process and is made by the worker alone.
        client = build_app(stack.settings)  # never started: reads the database only
        try:
            ann = stack.telegram.user(801, first_name="Ann")
            generate = await start_image_flow(ann)
            await ann.tap(generate)
            await wait_media(ann, 1, timeout=90)
            [g] = await client.repository.list_library(801, limit=5, offset=0)
            assert g.status == "succeeded"
        finally:
            await client.engine.dispose()
        assert "createTask started" in worker.log_path.read_text(errors="replace")
        assert "createTask started" not in stack.log_path.read_text(errors="replace")

        # After all that, the webhook is still set and the worker never polled nor deleted it.
        assert await _webhook_url(stack) == url
        assert _calls(stack, "deleteWebhook", since) == 0
        assert _calls(stack, "getUpdates", since) == 0
        assert _calls(stack, "setWebhook", since) == 0
        await see(ann, "a lighthouse at dusk")
        assert await worker.terminate() == 0
