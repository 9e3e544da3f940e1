"""/metrics on a running bot: what it reports is what the KIE emulator, the fake Telegram and the
database saw — a success, a KIE failure (refunded), a 429 on createTask, a Telegram flood and a
Stars payment — behind METRICS_TOKEN, with no user id, task id, prompt or secret in it."""

from __future__ import annotations

from collections import Counter

import aiohttp
from aiogram.methods import SendMessage
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.pipeline.helpers import BONUS, make_user, plain_stack, start, wait_final

TOKEN = "metrics-token-for-the-e2e-0123"
MODEL = "seedream_45_t2i"
PROMPT = "a lighthouse made of marmalade"
KIE_API = ("/api/v1/jobs/", "/api/v1/common/", "/api/v1/chat/", "/api/file-")


async def scrape(stack, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(
        f"{stack.app.base_url}/metrics", headers=headers
    ) as response:
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_report_what_happened(tmp_path):
    async with plain_stack(tmp_path, settings={"METRICS_TOKEN": TOKEN}) as stack:
        await make_user(stack)
        stack.kie.faults.create_errors = 1  # one 429 on createTask, then accepted
        done = await wait_final(stack, (await start(stack, prompt=PROMPT)).generation.id)
        stack.kie.faults.fail_next = 1
        failed = await wait_final(stack, (await start(stack, prompt=PROMPT)).generation.id)
        assert (done.status, failed.status) == ("succeeded", "failed")
        stack.telegram.faults.flood_for(2.0, retry_after=1)  # outlasts per-chat pacing
        await stack.app.sender.send(111, SendMessage(chat_id=111, text="after the flood"))
        assert await stack.app.repository.credit_purchase(
            user_id=111, charge_id="charge-e2e-1", stars=50, credits=50, payload=None)
        await stack.settle()

        assert (await scrape(stack, None))[0] == 401
        assert (await scrape(stack, "wrong-token-0123456789"))[0] == 401
        status, text = await scrape(stack, TOKEN)
        assert status == 200
        kie_seen = Counter(
            (r.path.rsplit("/", 1)[-1], str(r.status)) for r in stack.kie.requests
            if r.path.startswith(KIE_API))
        floods = sum(1 for call in stack.telegram.calls if call.status == 429)
        task_ids = {t for t in stack.kie.tasks}
        secrets = [stack.bot_token, stack.kie_api_key, stack.callback_secret, TOKEN]

    got = samples(text)
    gen = "kiebot_generations_total"
    assert got[(gen, (("model", MODEL), ("status", "created")))] == 2
    assert got[(gen, (("model", MODEL), ("status", "succeeded")))] == 1
    assert got[(gen, (("model", MODEL), ("status", "failed")))] == 1
    assert got[(gen, (("model", MODEL), ("status", "refunded")))] == 1
    assert got[("kiebot_credits_total", (("kind", "spent"),))] == done.cost + failed.cost
    assert got[("kiebot_credits_total", (("kind", "refunded"),))] == failed.cost
    assert got[("kiebot_credits_total", (("kind", "sold"),))] == 50
    assert got[("kiebot_credits_total", (("kind", "bonus"),))] == BONUS
    assert got[("kiebot_payments_total", ())] == 1 and got[("kiebot_payment_stars_total", ())] == 50
    assert got[("kiebot_credits_balance", ())] == BONUS - done.cost + 50
    depths = {labels[0][1]: v for (name, labels), v in got.items() if name == "kiebot_queue_depth"}
    assert depths == {"submit": 0, "poll": 0, "store": 0, "deliver": 0, "expire": 0}

    # Every KIE API request the emulator answered, by endpoint and code, and nothing else.
    reported = {(dict(labels)["endpoint"], dict(labels)["code"]): v
                for (name, labels), v in got.items() if name == "kiebot_kie_requests_total"}
    assert reported == dict(kie_seen)
    assert kie_seen[("createTask", "429")] == 1
    assert got[("kiebot_kie_errors_total", (("code", "429"), ("endpoint", "createTask")))] == 1
    assert got[("kiebot_kie_request_seconds_count", (("endpoint", "createTask"),))] == sum(
        n for (endpoint, _), n in kie_seen.items() if endpoint == "createTask")

    # Every 429 the fake Telegram gave, counted once.
    assert floods >= 1
    assert sum(v for (name, _), v in got.items()
               if name == "kiebot_telegram_flood_waits_total") == floods

    labels = {value for (_, pairs) in got for _, value in pairs}
    assert not labels & ({"111"} | task_ids)
    for secret in [*secrets, PROMPT]:
        assert secret not in text


async def test_kiebot_run_logs_json_and_serves_metrics(tmp_path):
    """The real command: LOG_FORMAT=json makes every line of its output a JSON object (the
    readiness line included), library chatter stays out, and /metrics answers."""
    import json

    from testkit.stack import LocalStack

    async with LocalStack(tmp_path, in_process=False) as stack:
        await stack.start_process(env={"LOG_FORMAT": "json"})
        async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{stack.port}/metrics"
        ) as response:
            assert response.status == 200
            assert "kiebot_queue_depth" in await response.text()
        assert await stack.terminate_process() == 0
        output = stack.log_path.read_text()
        secrets = [stack.bot_token, stack.kie_api_key, stack.callback_secret]
    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(e.get("event") == "kiebot ready" and e["mode"] == "webhook" for e in entries)
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert not [e for e in entries if e["logger"].startswith(("httpx", "aiohttp.access"))]
    for secret in secrets:
        assert secret not in output
