"""What the webhook intake reads from a body before storing it: the update_id, the chat whose
order it keeps, or a reason for a 400."""

from __future__ import annotations

import json

import pytest

from bot.inbox import BadUpdate, chat_key_of, parse_update

USER = {"id": 77, "is_bot": False, "first_name": "U"}


@pytest.mark.parametrize(("update", "key"), [
    ({"update_id": 1, "message": {"chat": {"id": 77}, "from": USER}}, 77),
    ({"update_id": 1, "edited_message": {"chat": {"id": -100}, "from": USER}}, -100),
    # A button press belongs to the chat of the message it sits on (the same as /start's).
    ({"update_id": 1, "callback_query": {"id": "q", "from": USER,
                                         "message": {"chat": {"id": 77}}}}, 77),
    ({"update_id": 1, "callback_query": {"id": "q", "from": USER,
                                         "inline_message_id": "x"}}, 77),
    ({"update_id": 1, "pre_checkout_query": {"id": "p", "from": USER}}, 77),
    ({"update_id": 1, "my_chat_member": {"chat": {"id": 77}, "from": USER}}, 77),
    ({"update_id": 1, "poll_answer": {"poll_id": "p", "user": USER}}, 77),
    ({"update_id": 1, "poll": {"id": "p"}}, None),
    ({"update_id": 1}, None),
])
def test_chat_key(update, key):
    assert chat_key_of(update) == key


def test_parse_keeps_the_body_as_sent():
    body = json.dumps({"update_id": 5, "message": {"message_id": 1, "date": 0,
                                                   "chat": {"id": 9, "type": "private"}, "text": "é"}},
                      ensure_ascii=False).encode()
    assert parse_update(body) == (5, 9, body.decode())


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "body is not JSON"),
    (b"{", "body is not JSON"),
    (b"\xff", "body is not JSON"),
    (b"null", "update is not a JSON object"),
    (b'"text"', "update is not a JSON object"),
    (b'{"update_id": true}', "update_id missing or not an integer"),
    (b'{"update_id": -1}', "update_id missing or not an integer"),
    (b'{"update_id": 1.5}', "update_id missing or not an integer"),
    (b'{"update_id": 99999999999999999999}', "update_id missing or not an integer"),
    (b"[" * 5000 + b"]" * 5000, "body is nested too deeply"),
    (b'{"update_id": 1, "message": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body is nested too deeply"),
    (b'[{"update_id": 1}]', "update is not a JSON object"),
    (b"   ", "body is not JSON"),
    (b'{"update_id": 1, "message": "hi"}',
     "not a Telegram update: message: Input should be a valid dictionary or instance of Message"),
    (json.dumps({"update_id": 1, "message": {"message_id": 1, "date": 0, "text": 5,
                                             "chat": {"id": 1, "type": "private"}}}).encode(),
     "not a Telegram update: message.text: Input should be a valid string"),
    (json.dumps({"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "hi",
                                             "chat": {"id": 2**64, "type": "private"}}}).encode(),
     "a number does not fit in 64 bits"),
    (json.dumps({"update_id": 1, "callback_query": {"id": "q", "chat_instance": "c",
                                                    "from": {"id": -(2**63) - 1, "is_bot": False,
                                                             "first_name": "U"}}}).encode(),
     "a number does not fit in 64 bits"),
    (b'{"update_id": 1, "callback_query": {"id": 1}}',
     "not a Telegram update: callback_query.id: Input should be a valid string (and 2 more)"),
])
def test_parse_refuses_with_a_reason(body, reason):
    with pytest.raises(BadUpdate) as caught:
        parse_update(body)
    assert caught.value.reason == reason


def test_a_reason_never_echoes_the_body():
    secret = "x" * 50 + "SECRETVALUE"
    body = json.dumps({"update_id": 1, "message": {"message_id": secret}}).encode()
    with pytest.raises(BadUpdate) as caught:
        parse_update(body)
    assert "SECRETVALUE" not in caught.value.reason
    assert caught.value.reason.startswith("not a Telegram update: message.message_id:")


def test_kinds_of_update_aiogram_does_not_know_yet_are_kept():
    """Telegram adds update kinds; storing them is harmless (the dispatcher skips them)."""
    body = b'{"update_id": 3, "some_future_kind": {"id": 1}}'
    assert parse_update(body) == (3, None, body.decode())


def test_validated_updates_are_bound_to_the_bot_and_handed_over_once():
    """The webhook's validated Update goes to this process's drainer (ParsedUpdates) bound to
    the bot, as the dispatcher needs it; taken once, then the stored JSON is the source."""
    from aiogram import Bot

    from bot.inbox import ParsedUpdates, validate_update

    bot = Bot("42:TEST")
    body = json.dumps({"update_id": 6, "message": {"message_id": 1, "date": 0,
                                                   "chat": {"id": 9, "type": "private"}, "text": "hi"}}).encode()
    update_id, chat_key, payload, update = validate_update(body, bot=bot)
    assert (update_id, chat_key, payload) == (6, 9, body.decode())
    assert update.message.text == "hi" and update.message.bot is bot
    parsed = ParsedUpdates(limit=2)
    parsed.put(update_id, update)
    assert parsed.take(6) is update and parsed.take(6) is None


def test_parsed_updates_keep_only_the_newest():
    from bot.inbox import ParsedUpdates

    parsed = ParsedUpdates(limit=2)
    for n in (1, 2, 3):
        parsed.put(n, object())
    assert len(parsed) == 2 and parsed.take(1) is None and parsed.take(3) is not None
