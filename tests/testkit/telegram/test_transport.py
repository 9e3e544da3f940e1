"""The wire format as the official server speaks it, checked with a plain HTTP client."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp
import pytest

from testkit.telegram import FakeTelegram

from .conftest import TOKEN
from .scenario import png_bytes

CHAT = 77


@pytest.fixture
async def http(fake: FakeTelegram) -> AsyncIterator[aiohttp.ClientSession]:
    fake.user(CHAT)
    async with aiohttp.ClientSession(base_url=fake.base_url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, *, verb: str = "POST", token: str = TOKEN,
               **kwargs: Any) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.request(verb, f"/bot{token}/{method}", **kwargs) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json(), resp


async def test_all_encodings_are_accepted(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "sendMessage", verb="GET", params={"chat_id": CHAT, "text": "query"})
    assert status == 200 and body["result"]["text"] == "query"
    status, body, _ = await call(http, "sendMessage", data={"chat_id": str(CHAT), "text": "form"})
    assert body["result"]["text"] == "form"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, body, _ = await call(http, "sendMessage", json={"chat_id": CHAT, "text": "json", "reply_markup": markup})
    assert body["result"]["reply_markup"] == markup
    status, body, _ = await call(http, "sendMessage", params={"chat_id": CHAT},
                                 data={"text": "mixed", "reply_markup": json.dumps(markup)})
    assert body["result"]["text"] == "mixed" and body["result"]["reply_markup"] == markup


async def test_method_names_are_case_insensitive(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GETME", verb="GET")
    assert status == 200 and body["result"]["is_bot"] is True


async def test_multipart_attach_and_direct_file_parts(fake: FakeTelegram, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("photo", "attach://pic1")
    form.add_field("pic1", png_bytes(), filename="p.png", content_type="image/png")
    status, body, _ = await call(http, "sendPhoto", data=form)
    assert status == 200 and body["result"]["photo"][-1]["width"] == 64
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("document", b"%PDF-1.4", filename="doc.pdf", content_type="application/pdf")
    status, body, _ = await call(http, "sendDocument", data=form)
    assert body["result"]["document"]["file_name"] == "doc.pdf"
    assert fake.calls[-1].params["document"].data == b"%PDF-1.4"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("photo", "attach://missing")
    status, body, _ = await call(http, "sendPhoto", data=form)
    assert status == 400 and "missing file part" in body["description"]


async def test_media_group_with_attach_parts(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("media", json.dumps([{"type": "photo", "media": "attach://a", "caption": "one"},
                                        {"type": "photo", "media": "attach://b"}]))
    form.add_field("a", png_bytes(), filename="a.png")
    form.add_field("b", png_bytes(color="blue"), filename="b.png")
    status, body, _ = await call(http, "sendMediaGroup", data=form)
    assert status == 200 and len(body["result"]) == 2
    assert body["result"][0]["media_group_id"] == body["result"][1]["media_group_id"]
    status, body, _ = await call(http, "sendMediaGroup", json={"chat_id": CHAT, "media": [
        {"type": "photo", "media": "attach://a"}]})
    assert status == 400 and "2-10 items" in body["description"]


@pytest.mark.parametrize("params, fragment", [
    ({"chat_id": CHAT}, 'parameter "text" is required for method sendMessage'),
    ({"chat_id": [1], "text": "x"}, 'parameter "chat_id" must be Integer or String, got Array'),
    ({"chat_id": CHAT, "text": "x", "colour": "red"}, 'unknown parameter "colour" for method sendMessage'),
    ({"chat_id": CHAT, "text": "x", "disable_notification": "maybe"},
     'parameter "disable_notification" must be Boolean'),
    ({"chat_id": CHAT, "text": "x", "reply_markup": {"inline_keyboard": [[{"callback_data": "a"}]]}},
     'field "reply_markup.inline_keyboard[0][0].text" is required for InlineKeyboardButton'),
    ({"chat_id": CHAT, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a", "callbak": "a"}]]}},
     'unknown field "reply_markup.inline_keyboard[0][0].callbak"'),
    ({"chat_id": CHAT, "text": "x", "reply_markup": "{not json"}, 'can\'t parse parameter "reply_markup"'),
    ({"chat_id": CHAT, "text": "x", "entities": [{"type": "bold", "offset": "0", "length": 1}]},
     'parameter "entities[0].offset" must be Integer, got String'),
])
async def test_spec_violations_name_the_parameter(http: aiohttp.ClientSession, params: dict, fragment: str) -> None:
    status, body, _ = await call(http, "sendMessage", json=params)
    assert status == 400 and body["ok"] is False and body["error_code"] == 400
    assert body["description"].startswith("Bad Request: ") and fragment in body["description"], body


async def test_nested_types_in_other_methods(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "sendInvoice", json={
        "chat_id": CHAT, "title": "t", "description": "d", "payload": "p", "currency": "XTR",
        "prices": [{"label": "Pack", "amount": "50"}]})
    assert status == 400 and 'parameter "prices[0].amount" must be Integer, got String' in body["description"]
    status, body, _ = await call(http, "setMyCommands", json={"commands": [{"command": "Bad Cmd", "description": "d"}]})
    assert status == 400 and "BOT_COMMAND_INVALID" in body["description"]
    status, body, _ = await call(http, "setMyCommands", json={
        "commands": [{"command": "x", "description": "d"}], "scope": {"type": "nonsense"}})
    assert status == 400 and "scope" in body["description"]
    status, body, _ = await call(http, "sendMessage", data={"chat_id": CHAT, "text": "x", "message_thread_id": "abc"})
    assert status == 400 and 'parameter "message_thread_id" must be Integer' in body["description"]


async def test_unknown_method_wrong_token_and_bad_url(fake: FakeTelegram, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "sendTelepathy", json={})
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    status, body, _ = await call(http, "getMe", token="123456:nope")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    async with http.get("/elsewhere") as resp:
        assert resp.status == 404 and (await resp.json())["description"] == "Not Found"
    async with http.get("/file/bot123456:nope/photos/file_1.jpg") as resp:
        assert resp.status == 401
    async with http.get(f"/file/bot{TOKEN}/photos/none.jpg") as resp:
        assert resp.status == 404
    assert "nope" not in repr(fake) and TOKEN not in repr(fake)


async def test_flood_reply_has_retry_after_header(fake: FakeTelegram, http: aiohttp.ClientSession) -> None:
    fake.faults.flood_next(1, retry_after=7)
    status, body, resp = await call(http, "sendMessage", json={"chat_id": CHAT, "text": "x"})
    assert status == 429 and resp.headers["Retry-After"] == "7"
    assert body == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                    "parameters": {"retry_after": 7}}
    assert [(e.method, e.retry_after, e.reason) for e in fake.flood_events] == [("sendMessage", 7, "fault")]


async def test_unmodelled_methods_answer_plausibly(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "setChatTitle", json={"chat_id": CHAT, "title": "t"})
    assert (status, body["result"]) == (200, True)
    status, body, _ = await call(http, "sendDice", json={"chat_id": CHAT})
    assert status == 200 and body["result"]["chat"]["id"] == CHAT
    status, body, _ = await call(http, "getChat", json={"chat_id": CHAT})
    assert status == 200 and body["result"]["id"] == CHAT


async def test_secrets_stay_out_of_reprs(fake: FakeTelegram) -> None:
    await fake.call("setWebhook", {"url": "http://127.0.0.1:9/h", "secret_token": "TopSecret_42"})
    assert "TopSecret_42" not in repr(fake.calls[-1]) and "TopSecret_42" not in repr(fake.updates)
    assert fake.calls[-1].params["secret_token"] == "TopSecret_42"  # tests can still assert on it
    await fake.call("deleteWebhook", {})


async def test_non_object_json_body_is_a_bad_request(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "sendMessage", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert (status, body["description"]) == (400, "Bad Request: can't parse JSON object")


async def test_albums_may_mix_photos_and_videos_but_not_documents(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("media", json.dumps([{"type": "photo", "media": "attach://a"},
                                        {"type": "video", "media": "https://cdn.example.com/v.mp4"}]))
    form.add_field("a", png_bytes(), filename="a.png")
    status, body, _ = await call(http, "sendMediaGroup", data=form)
    assert status == 200 and "video" in body["result"][1]
    status, body, _ = await call(http, "sendMediaGroup", json={"chat_id": CHAT, "media": [
        {"type": "photo", "media": "https://x.org/a.jpg"}, {"type": "document", "media": "https://x.org/b.pdf"}]})
    assert status == 400 and "grouped only with items of the same type" in body["description"]
    status, body, _ = await call(http, "sendMediaGroup", json={"chat_id": CHAT, "media": [
        {"type": "photo", "media": "https://x.org/a.jpg"}, {"type": "gif", "media": "https://x.org/b.gif"}]})
    assert status == 400 and 'field "media[1].type" must be one of "audio", "document"' in body["description"]


async def test_json_null_means_absent(http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "sendMessage", json={"chat_id": CHAT, "text": "x", "reply_markup": None})
    assert status == 200
    status, body, _ = await call(http, "sendMessage", json={"chat_id": CHAT, "text": None})
    assert status == 400 and 'parameter "text" is required' in body["description"]
