"""The server's edges: forged KIE callbacks change nothing; bad bodies get a 4xx; media and health."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from kie_client.callbacks import make_callback_token, sign_webhook
from testkit.kie.faults import StateDelays
from tests.conftest import wait_until
from tests.e2e.pipeline.helpers import make_user, plain_stack, start

HMAC_KEY = "test-webhook-hmac-key-0123456789"
SLOW = {"delays": StateDelays(waiting=60.0, queuing=None, generating=None)}


def _body(task_id: str, state: str = "success") -> bytes:
    return json.dumps({
        "code": 200, "msg": "Playground task completed successfully.",
        "data": {"taskId": task_id, "model": "seedream/4.5-text-to-image", "state": state,
                 "param": "{}", "resultJson": json.dumps({"resultUrls": ["http://127.0.0.1:1/x.png"]}),
                 "failCode": None, "failMsg": None, "costTime": 1, "createTime": 1, "completeTime": 2},
    }).encode()


def _headers(task_id: str, *, ts: int | None = None, key: str = HMAC_KEY) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {"X-Webhook-Timestamp": str(stamp), "X-Webhook-Signature": sign_webhook(key, task_id, stamp),
            "Content-Type": "application/json"}


@pytest.fixture
async def running(tmp_path):
    async with plain_stack(tmp_path, hmac_key=HMAC_KEY, emulator_options=SLOW,
                           settings={"CALLBACK_GRACE_SECONDS": "600"}) as stack:
        await make_user(stack)
        first = await start(stack, card=False)
        second = await start(stack, card=False)

        async def submitted():
            rows = [await stack.app.repository.get_generation(s.generation.id) for s in (first, second)]
            return all(r.task_id for r in rows) and rows

        rows = await wait_until(submitted, timeout=10)
        async with aiohttp.ClientSession() as session:
            yield stack, rows[0], rows[1], session


def _url(stack, gid: int, token: str | None) -> str:
    base = f"http://127.0.0.1:{stack.port}/kie/callback/{gid}"
    return base if token is None else f"{base}?token={token}"


async def test_forged_callbacks_change_nothing(running):
    stack, g, other, session = running
    secret = stack.callback_secret
    good_token = make_callback_token(secret, g.id)
    forged = [
        (_url(stack, g.id, None), _headers(g.task_id)),                                # no token
        (_url(stack, g.id, "A" * 32), _headers(g.task_id)),                            # wrong token
        (_url(stack, g.id, make_callback_token(secret, other.id)), _headers(g.task_id)),  # other's token
        (_url(stack, g.id, make_callback_token("another-secret-123456", g.id)), _headers(g.task_id)),
        (_url(stack, g.id, good_token), _headers(g.task_id, key="wrong-key-0123456789")),  # bad signature
        (_url(stack, g.id, good_token), _headers(g.task_id, ts=int(time.time()) - 3600)),  # stale
        (_url(stack, g.id, good_token), {"Content-Type": "application/json"}),          # unsigned
    ]
    for url, headers in forged:
        async with session.post(url, data=_body(g.task_id), headers=headers) as resp:
            assert resp.status == 401, url
    after = await stack.app.repository.get_generation(g.id)
    assert after == g  # not one field changed
    assert after.callback_received_at is None


async def test_malformed_oversized_unknown_and_mismatched_callbacks_get_4xx(running):
    stack, g, other, session = running
    token = make_callback_token(stack.callback_secret, g.id)
    url = _url(stack, g.id, token)
    async with session.post(url, data=b"{not json", headers=_headers(g.task_id)) as resp:
        assert resp.status == 400
    async with session.post(url, data=b"x" * (300 * 1024), headers=_headers(g.task_id)) as resp:
        assert resp.status == 413
    missing = 987654
    async with session.post(_url(stack, missing, make_callback_token(stack.callback_secret, missing)),
                            data=_body("f" * 32), headers=_headers("f" * 32)) as resp:
        assert resp.status == 404
    async with session.post(url, data=_body(other.task_id), headers=_headers(other.task_id)) as resp:
        assert resp.status == 409
    async with session.post(f"http://127.0.0.1:{stack.port}/kie/callback/abc?token=x", data=b"{}") as resp:
        assert resp.status == 404
    # The URL names the body's shape: an unknown one, or a Veo body without a task id, is 400.
    async with session.post(url + "&api=suno", data=_body(g.task_id),
                            headers=_headers(g.task_id)) as resp:
        assert resp.status == 400 and "malformed" in (await resp.json())["msg"]
    async with session.post(url + "&api=veo", data=b'{"code": 200, "data": {"info": {}}}',
                            headers=_headers(g.task_id)) as resp:
        assert resp.status == 400
    assert await stack.app.repository.get_generation(g.id) == g


async def test_genuine_callback_is_acknowledged_at_once_and_repeats_are_harmless(running):
    """The answer does not wait for KIE: with KIE gone, every callback is still acknowledged
    (the wake-up is persisted; the poll stage reads recordInfo later). How fast the answer comes
    is the benchmark's business, not a wall-clock assertion's."""
    stack, g, _, session = running
    url = _url(stack, g.id, make_callback_token(stack.callback_secret, g.id))
    await stack.kie.stop()
    for _ in range(3):
        async with session.post(url, data=_body(g.task_id, state="waiting"),
                                headers=_headers(g.task_id)) as resp:
            assert resp.status == 200
            assert await resp.json() == {"code": 200, "msg": "success"}
    after = await stack.app.repository.get_generation(g.id)
    assert after.callback_received_at is not None
    # recordInfo (the truth) still says waiting: nothing was stored or charged again.
    assert after.status == "generating"


async def test_media_route_refuses_traversal_and_health_reports_queues(running):
    stack, _, _, session = running
    base = f"http://127.0.0.1:{stack.port}"
    (stack.directory / "secret.txt").write_text("nope")
    for path in ("/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/111/image/none.jpg"):
        async with session.get(base + path) as resp:
            assert resp.status == 404, path
    async with session.get(base + "/readyz") as resp:
        body = await resp.json()
        assert body["checks"]["database"] == "ok"
        assert body["queues"]["generating"] == 2


@pytest.mark.parametrize("webhook", [True, False], ids=["webhook", "polling"])
async def test_telegram_updates_reach_the_bot(tmp_path, webhook):
    async with plain_stack(tmp_path, webhook=webhook) as stack:
        ann = stack.telegram.user(555, first_name="Ann", language_code="en")
        await ann.send_command("/start")
        await ann.wait_for_message(lambda m: m.from_bot, timeout=10)
        hooks = [c for c in stack.telegram.calls if c.method == "setWebhook"]
        if webhook:
            assert hooks and hooks[-1].params["url"] == f"http://127.0.0.1:{stack.port}/tg/webhook"
            assert hooks[-1].params["secret_token"] == stack.app.telegram_secret
            assert "message" in hooks[-1].params["allowed_updates"]
        else:
            assert not hooks and any(c.method == "getUpdates" for c in stack.telegram.calls)


async def test_webhook_without_the_secret_header_is_refused(tmp_path):
    async with plain_stack(tmp_path) as stack, aiohttp.ClientSession() as session:
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
                                              "from": {"id": 1, "is_bot": False, "first_name": "X"},
                                              "text": "/start"}}
        url = f"http://127.0.0.1:{stack.port}/tg/webhook"
        async with session.post(url, json=update) as resp:
            assert resp.status == 401
        async with session.post(url, json=update,
                                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
            assert resp.status == 401


async def test_callback_body_arriving_in_several_segments_is_read_whole(running):
    """A long callback (several result URLs) spans TCP segments; it must not be cut and refused."""
    import asyncio

    stack, g, _, _ = running
    body = json.loads(_body(g.task_id, state="waiting"))
    body["data"]["param"] = json.dumps({"input": {"prompt": "p" * 3000}})
    raw = json.dumps(body).encode()
    token = make_callback_token(stack.callback_secret, g.id)
    head = (f"POST /kie/callback/{g.id}?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in _headers(g.task_id).items()
                      if k != "Content-Type")
            + "Connection: close\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    writer.write(head + raw[:700])
    await writer.drain()
    await asyncio.sleep(0.2)  # the server has the first part buffered before the rest arrives
    writer.write(raw[700:])
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert b" 200 " in status_line, status_line
    after = await stack.app.repository.get_generation(g.id)
    assert after.callback_received_at is not None


async def test_odd_paths_get_404_never_500(running):
    stack, _, _, session = running
    base = f"http://127.0.0.1:{stack.port}"
    async with session.post(base + "/kie/callback/%C2%B2?token=x", data=b"{}") as resp:
        assert resp.status == 404  # "²".isdigit() is True, int("²") is not
    async with session.get(base + "/media/111/image/" + "a" * 300 + ".png") as resp:
        assert resp.status == 404  # a name too long for the file system
