"""Bot-side methods for text, edits, callbacks, commands and updates."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .errors import NOT_MODIFIED, QUERY_TOO_OLD, bad_request
from .formatting import apply_parse_mode
from .limits import check_callback_answer, check_caption, check_reply_markup, check_text
from .transport import Reply

if TYPE_CHECKING:
    from .server import FakeTelegram

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                 "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}


def caption_content(params: dict[str, Any], field: str = "caption") -> dict[str, Any]:
    """caption (+ caption_entities) as the user sees it; None values mean "no caption"."""
    caption, entities = apply_parse_mode(params.get("caption") or "", params.get("parse_mode"),
                                         params.get("caption_entities"), field)
    check_caption(caption, field)
    return {"caption": caption or None, "caption_entities": entities if caption else None}


def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    check_reply_markup(markup)
    return markup


def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only inline keyboards stay attached to a message; reply keyboards live in the client."""
    return markup if markup and "inline_keyboard" in markup else None


async def get_me(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return {**fake.bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}


def _text(params: dict[str, Any]) -> dict[str, Any]:
    """text (+ entities) as the user sees it, after parse_mode."""
    text, entities = apply_parse_mode(params["text"], params.get("parse_mode"), params.get("entities"), "text")
    check_text(text)
    return {"text": text, "entities": entities}


async def send_message(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    content = {k: v for k, v in _text(params).items() if v is not None}
    markup = _markup(params)
    chat = fake.chat(params["chat_id"], sending=True)
    content.update(fake.reply_to(chat, params))
    if _inline(markup):
        content["reply_markup"] = markup
    return fake.post_message(chat, content, outgoing=True).message


def _edit_target(fake: FakeTelegram, params: dict[str, Any]) -> Any:
    if params.get("inline_message_id"):
        return None
    if params.get("chat_id") is None or params.get("message_id") is None:
        raise bad_request("chat_id and message_id are required unless inline_message_id is given")
    fake.chat(params["chat_id"], sending=True)  # edits in a chat that blocked the bot get 403 too
    stored = fake.find_message(params["chat_id"], params["message_id"], "edit")
    if not stored.outgoing:
        raise bad_request("message can't be edited")
    return stored


def _apply_edit(fake: FakeTelegram, stored: Any, changes: dict[str, Any], markup: Any) -> dict[str, Any]:
    message = stored.message
    new_markup = _inline(markup)
    if all(message.get(k) == v for k, v in changes.items()) and message.get("reply_markup") == new_markup:
        raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    # Like Telegram: an edit without reply_markup removes the inline keyboard.
    if new_markup:
        message["reply_markup"] = new_markup
    else:
        message.pop("reply_markup", None)
    message["edit_date"] = fake.now()
    fake.notifier.notify()
    return message


async def edit_message_text(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    changes = _text(params)
    markup = _markup(params)
    stored = _edit_target(fake, params)
    if stored is None:
        return True
    if "text" not in stored.message:
        raise bad_request("there is no text in the message to edit")
    return _apply_edit(fake, stored, changes, markup)


async def edit_message_caption(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    changes = caption_content(params)
    markup = _markup(params)
    stored = _edit_target(fake, params)
    if stored is None:
        return True
    if "text" in stored.message or "invoice" in stored.message:
        raise bad_request("there is no caption in the message to edit")
    return _apply_edit(fake, stored, changes, markup)


async def edit_message_reply_markup(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    markup = _markup(params)
    stored = _edit_target(fake, params)
    if stored is None:
        return True
    return _apply_edit(fake, stored, {}, markup)


async def delete_message(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    chat = fake.chat(params["chat_id"])
    stored = chat.messages.get(params["message_id"])
    if stored is None or stored.deleted:
        raise bad_request("message to delete not found")
    stored.deleted = True
    fake.notifier.notify()
    return True


async def delete_messages(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    chat = fake.chat(params["chat_id"])
    for message_id in params["message_ids"]:
        stored = chat.messages.get(message_id)
        if stored is not None:
            stored.deleted = True
    fake.notifier.notify()
    return True


async def send_chat_action(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    if params["action"] not in _CHAT_ACTIONS:
        raise bad_request(f'wrong parameter action in request: "{params["action"]}"')
    chat = fake.chat(params["chat_id"], sending=True)
    chat.actions.append(params["action"])
    return True


async def get_chat(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    from .api_generic import minimal

    chat = fake.chat(params["chat_id"])
    return {**minimal(fake, "ChatFullInfo", params, 0), **chat.user.as_chat()}


async def answer_callback_query(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    check_callback_answer(params.get("text"))
    query = fake.callback_queries.get(params["callback_query_id"])
    if query is None or query.answer is not None or fake.clock() - query.created > fake.callback_timeout:
        raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
    query.answer = {k: v for k, v in params.items() if k != "callback_query_id"}
    fake.notifier.notify()
    return True


def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), params.get("language_code") or ""


async def set_my_commands(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    commands = params["commands"]
    if len(commands) > 100:
        raise bad_request("commands: at most 100 commands")
    for i, command in enumerate(commands):
        if not _COMMAND.match(command["command"]):
            raise bad_request(f"BOT_COMMAND_INVALID: commands[{i}].command must be 1-32 of a-z, 0-9, _")
        if not 1 <= len(command["description"]) <= 256:
            raise bad_request(f"BOT_COMMAND_DESCRIPTION_INVALID: commands[{i}].description must be 1-256 characters")
    fake.commands[_scope_key(params)] = [dict(c) for c in commands]
    return True


async def get_my_commands(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return fake.commands.get(_scope_key(params), [])


async def delete_my_commands(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    fake.commands.pop(_scope_key(params), None)
    return True


async def get_updates(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return await fake.updates.get_updates(params)


async def set_webhook(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    secret = params.get("secret_token")
    if secret is not None and not _SECRET.match(secret):
        raise bad_request("secret token contains unallowed characters")
    url = params["url"]
    if url and not url.startswith(("http://", "https://")):
        # Stricter than Telegram (HTTPS only, ports 443/80/88/8443): loopback HTTP is what tests use.
        raise bad_request("bad webhook: invalid URL")
    return Reply(True, fake.updates.set_webhook(params))


async def delete_webhook(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return Reply(True, fake.updates.delete_webhook(params))


async def get_webhook_info(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return fake.updates.webhook.info(len(fake.updates.pending), fake.updates.allowed)


async def log_out_or_close(fake: FakeTelegram, params: dict[str, Any], files: Any) -> Any:
    return True


HANDLERS = {
    "getMe": get_me,
    "sendMessage": send_message,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "deleteMessages": delete_messages,
    "sendChatAction": send_chat_action,
    "answerCallbackQuery": answer_callback_query,
    "getChat": get_chat,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "logOut": log_out_or_close,
    "close": log_out_or_close,
}

