"""A Bot API double for `Dispatcher.feed_update` tests, after aiogram's own tests/mocked_bot.py:
no sockets, no HTTP, no waiting.

- `MockedSession` records every method the bot calls (`.calls`, in order) and answers each one
  with a result queued for that method (`add_result`, `add_error`) or else as Telegram would:
  sendMessage → a Message with the next message_id in that chat; editMessageText → the edited
  Message (400 "message is not modified" for an identical edit, as Telegram answers);
  answerCallbackQuery and the other yes/no methods → True; sendInvoice → a Message with the
  invoice; getFile → the File of bytes given with `add_file`, whose download streams those bytes.
  Every answer is JSON parsed by aiogram's own `check_response`, so a result of the wrong shape
  fails as it would against Telegram. The session also keeps each chat's bot messages as they
  look now, edits applied (`shown(chat_id)`): what the user sees.
- `MockedBot(Bot)` owns a MockedSession.
- `Updates(bot)` builds the updates Telegram would send to that bot: text messages and commands
  (private chat unless another is given), photos, image files, stickers, a press of a button
  found by its visible text on a message the bot showed (so the callback data is exactly what
  the bot packed), a forged callback, pre_checkout_query and successful_payment.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    DeleteMessage,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetStarTransactions,
    SendAnimation,
    SendDocument,
    SendInvoice,
    SendMessage,
    SendPhoto,
    SendVideo,
    TelegramMethod,
)
from aiogram.types import Chat, InlineKeyboardMarkup, Message, TelegramObject, Update, User

BOT_TOKEN = "42:TEST"
BOT_USER = {"id": 42, "is_bot": True, "first_name": "kiebot", "username": "kiebot_test_bot"}
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message")


def _wire(value: Any) -> Any:
    """The JSON form Telegram uses ("from", not "from_user"; no nulls)."""
    if isinstance(value, TelegramObject):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


class MockedSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self.unanswered: list[str] = []  # methods called with no queued and no default answer
        self.downloads: list[str] = []  # file paths streamed
        self.chats: dict[int, dict] = {}  # chats seen in updates (the type matters)
        self.closed = True
        self._queued: dict[str, deque[dict]] = defaultdict(deque)
        self._files: dict[str, bytes] = {}
        self._shown: dict[int, dict[int, dict]] = defaultdict(dict)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)

    # -- what a test sets up -------------------------------------------------------------------

    def add_result(self, method: type[TelegramMethod[Any]], result: Any) -> None:
        """The next call of `method` answers `result` (a Telegram object, dict or plain value)."""
        self._queued[method.__api_method__].append({"ok": True, "result": _wire(result)})

    def add_error(self, method: type[TelegramMethod[Any]], *, error_code: int = 400,
                  description: str = "Bad Request", retry_after: int | None = None) -> None:
        """The next call of `method` fails as Telegram would (400 → TelegramBadRequest, …)."""
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self._queued[method.__api_method__].append(body)

    def add_file(self, file_id: str, data: bytes) -> None:
        self._files[file_id] = data

    def next_message_id(self) -> int:
        """Message ids are one sequence, shared by the user's and the bot's messages."""
        return next(self._message_ids)

    # -- what the user sees --------------------------------------------------------------------

    def shown(self, chat_id: int) -> list[Message]:
        """The bot's messages in this chat, oldest first, as they look now (edits applied,
        deleted ones gone). Detached snapshots: read them, don't call their shortcuts."""
        return [Message.model_validate(m) for _, m in sorted(self._shown[chat_id].items())]

    def calls_of(self, *methods: type[TelegramMethod[Any]]) -> list[Any]:
        return [c for c in self.calls if isinstance(c, methods)]

    # -- BaseSession ---------------------------------------------------------------------------

    async def close(self) -> None:
        self.closed = True

    async def make_request(self, bot: Bot, method: TelegramMethod[Any],
                           timeout: int | None = None) -> Any:
        self.closed = False
        self.calls.append(method)
        queued = self._queued[method.__api_method__]
        body = queued.popleft() if queued else self._answer(method)
        response = self.check_response(bot, method, body.get("error_code") or 200,
                                       json.dumps(body))
        if body["ok"]:
            self._remember(method, body["result"])
        return response.result

    async def stream_content(self, url: str, headers: dict[str, Any] | None = None,
                             timeout: int = 30, chunk_size: int = 65536,
                             raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        path = url.rsplit("/", 2)[-2:]  # ".../file/bot<token>/files/<file_id>"
        data = self._files.get(path[1]) if path[0] == "files" else None
        if data is None:
            raise aiohttp.ClientError(f"404 Not Found: {'/'.join(path)}")
        self.downloads.append("/".join(path))
        for start in range(0, len(data), chunk_size):
            yield data[start:start + chunk_size]

    # -- Telegram's answers --------------------------------------------------------------------

    def _answer(self, method: TelegramMethod[Any]) -> dict:
        if isinstance(method, (EditMessageText, EditMessageCaption, EditMessageReplyMarkup)):
            return self._edit(method)
        if isinstance(method, SendMessage):
            return _ok(self._message(method.chat_id, method.reply_markup, text=method.text))
        if isinstance(method, (SendPhoto, SendVideo, SendDocument, SendAnimation)):
            content = {**self._media_stub(method), **_caption(method.caption)}
            return _ok(self._message(method.chat_id, method.reply_markup, **content))
        if isinstance(method, SendInvoice):
            invoice = {"title": method.title, "description": method.description,
                       "start_parameter": method.start_parameter or "",
                       "currency": method.currency,
                       "total_amount": sum(p.amount for p in method.prices)}
            return _ok(self._message(method.chat_id, method.reply_markup, invoice=invoice))
        if isinstance(method, GetFile):
            data = self._files.get(method.file_id)
            if data is None:
                return _error(400, "Bad Request: invalid file_id")
            return _ok({"file_id": method.file_id, "file_unique_id": f"u-{method.file_id}",
                        "file_size": len(data), "file_path": f"files/{method.file_id}"})
        if isinstance(method, GetMe):
            return _ok(BOT_USER)
        if isinstance(method, GetStarTransactions):
            return _ok({"transactions": []})
        if isinstance(method, DeleteMessage) \
                and method.message_id not in self._shown[int(method.chat_id)]:
            return _error(400, "Bad Request: message to delete not found")
        if method.__returning__ is bool:
            return _ok(True)
        self.unanswered.append(method.__api_method__)
        raise NotImplementedError(f"MockedSession has no default answer for "
                                  f"{method.__api_method__}: queue one with add_result")

    def new_file_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._file_ids)}"

    def _media_stub(self, method: Any) -> dict:
        """The media part of a sent photo, video, document or animation (sizes are made up)."""
        file_id = self.new_file_id("sent")
        file = {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
        if isinstance(method, SendPhoto):
            return {"photo": [{**file, "width": 1280, "height": 720}]}
        if isinstance(method, SendDocument):
            return {"document": file}
        clip = {**file, "width": 1280, "height": 720, "duration": 5}
        return {"video": clip} if isinstance(method, SendVideo) else {"animation": clip}

    def _message(self, chat_id: int | str, markup: Any, **content: Any) -> dict:
        chat_id = int(chat_id)
        message = {"message_id": self.next_message_id(), "date": _now(), "from": BOT_USER,
                   "chat": self.chats.get(chat_id) or {"id": chat_id, "type": "private"},
                   **content}
        if isinstance(markup, InlineKeyboardMarkup):
            message["reply_markup"] = _wire(markup)
        return message

    def _edit(self, method: Any) -> dict:
        if method.inline_message_id:
            return {"ok": True, "result": True}
        current = self._shown[int(method.chat_id)].get(method.message_id)
        if current is None:
            return _error(400, "Bad Request: message to edit not found")
        edited = dict(current)
        if isinstance(method, EditMessageText):
            if "text" not in current:
                return _error(400, "Bad Request: there is no text in the message to edit")
            edited["text"] = method.text
        elif isinstance(method, EditMessageCaption):
            edited["caption"] = method.caption
        edited.pop("reply_markup", None)  # an edit without a keyboard removes the keyboard
        if isinstance(method.reply_markup, InlineKeyboardMarkup):
            edited["reply_markup"] = _wire(method.reply_markup)
        if edited == current:
            return _error(400, NOT_MODIFIED)
        edited["edit_date"] = _now()
        return {"ok": True, "result": edited}

    def _remember(self, method: TelegramMethod[Any], result: Any) -> None:
        if isinstance(method, DeleteMessage) and result is True:
            self._shown[int(method.chat_id)].pop(method.message_id, None)
        elif isinstance(result, dict) and "message_id" in result and "chat" in result:
            self._shown[int(result["chat"]["id"])][int(result["message_id"])] = result


def _ok(result: Any) -> dict:
    return {"ok": True, "result": result}


def _error(code: int, description: str) -> dict:
    return {"ok": False, "error_code": code, "description": description}


class MockedBot(Bot):
    if TYPE_CHECKING:
        session: MockedSession

    def __init__(self, token: str = BOT_TOKEN, **kwargs: Any) -> None:
        super().__init__(token, session=MockedSession(), **kwargs)
        self._me = User.model_validate(BOT_USER)


# -- updates -----------------------------------------------------------------------------------

def tg_user(user_id: int, first_name: str = "Ann", *, language_code: str | None = "en",
            username: str | None = None, last_name: str | None = None) -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, last_name=last_name,
                username=username, language_code=language_code)


def group_chat(chat_id: int = -100500, title: str = "Friends") -> Chat:
    return Chat(id=chat_id, type="supergroup", title=title)


def button_rows(markup: InlineKeyboardMarkup | None) -> list[list[str]]:
    """A keyboard as its visible texts, row by row."""
    return [[b.text for b in row] for row in markup.inline_keyboard] if markup else []


def text_of(method: Any) -> str | None:
    """What a sent or edited message says (its text or caption)."""
    return getattr(method, "text", None) or getattr(method, "caption", None)


class Updates:
    """Updates as Telegram would send them to `bot`; message ids continue the bot's sequence."""

    def __init__(self, bot: MockedBot) -> None:
        self.bot = bot
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)

    def message(self, user: User, text: str, *, chat: Chat | None = None,
                reply_to: Message | None = None) -> Update:
        """A text message; one starting with "/" is a command (with its bot_command entity);
        `reply_to`: the message it is a Telegram reply to."""
        extra: dict[str, Any] = {"text": text}
        if reply_to is not None:
            extra["reply_to_message"] = _wire(reply_to)
        if text.startswith("/"):
            extra["entities"] = [{"type": "bot_command", "offset": 0,
                                  "length": len(text.split()[0])}]
        return self._message_update(user, chat, extra)

    def photo(self, user: User, data: bytes, *, caption: str | None = None,
              chat: Chat | None = None, media_group_id: str | None = None) -> Update:
        """A photo (as Telegram sends it: a small size and the full one); getFile and the
        download of the full size answer `data`. With `media_group_id` it is one photo of an
        album (Telegram sends each as its own update)."""
        file_id = self.bot.session.new_file_id("photo")
        self.bot.session.add_file(file_id, data)
        sizes = [{"file_id": f"{file_id}-thumb", "file_unique_id": f"t-{file_id}", "width": 90,
                  "height": 90, "file_size": min(len(data), 1500)},
                 {"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 1280,
                  "height": 1280, "file_size": len(data)}]
        group = {"media_group_id": media_group_id} if media_group_id else {}
        return self._message_update(user, chat, {"photo": sizes, **group, **_caption(caption)})

    def voice(self, user: User, data: bytes, *, mime_type: str = "audio/ogg",
              duration: int = 3, caption: str | None = None) -> Update:
        """A voice message; its file downloads as `data`."""
        file_id = self.bot.session.new_file_id("voice")
        self.bot.session.add_file(file_id, data)
        voice = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "duration": duration,
                 "mime_type": mime_type, "file_size": len(data)}
        return self._message_update(user, None, {"voice": voice, **_caption(caption)})

    def document(self, user: User, data: bytes, *, mime_type: str, file_name: str,
                 caption: str | None = None) -> Update:
        file_id = self.bot.session.new_file_id("doc")
        self.bot.session.add_file(file_id, data)
        doc = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": file_name,
               "mime_type": mime_type, "file_size": len(data)}
        return self._message_update(user, None, {"document": doc, **_caption(caption)})

    def sticker(self, user: User) -> Update:
        sticker = {"file_id": "sticker-1", "file_unique_id": "s1", "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False}
        return self._message_update(user, None, {"sticker": sticker})

    def press(self, user: User, button: str, *, message: Message | None = None) -> Update:
        """A tap on the button labelled `button`: on `message` if given (say, an older card),
        else on the newest message in the user's chat that shows such a button."""
        candidates = [message] if message is not None else reversed(self.bot.session.shown(user.id))
        seen: list[list[list[str]]] = []
        for shown in candidates:
            for row in (shown.reply_markup.inline_keyboard if shown.reply_markup else []):
                for b in row:
                    if b.text == button and b.callback_data is not None:
                        return self.callback(user, b.callback_data, message=shown)
            seen.append(button_rows(shown.reply_markup))
        raise LookupError(f"no button {button!r}; buttons shown: {seen}")

    def callback(self, user: User, data: str, *, message: Message | None = None) -> Update:
        """A callback query with any data at all (a forged or outdated button)."""
        query: dict[str, Any] = {"id": f"cq-{next(self._query_ids)}", "from": _wire(user),
                                 "chat_instance": f"ci-{user.id}", "data": data}
        if message is not None:
            query["message"] = _wire(message)
        return self._update({"callback_query": query})

    def pre_checkout(self, user: User, *, payload: str, total_amount: int,
                     currency: str = "XTR") -> Update:
        return self._update({"pre_checkout_query": {
            "id": f"pcq-{next(self._query_ids)}", "from": _wire(user), "currency": currency,
            "total_amount": total_amount, "invoice_payload": payload}})

    def successful_payment(self, user: User, *, payload: str, total_amount: int,
                           charge_id: str, currency: str = "XTR") -> Update:
        paid = {"currency": currency, "total_amount": total_amount, "invoice_payload": payload,
                "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}
        return self._message_update(user, None, {"successful_payment": paid})

    def _message_update(self, user: User, chat: Chat | None, content: dict) -> Update:
        chat_wire = _wire(chat) if chat is not None else {
            "id": user.id, "type": "private", "first_name": user.first_name}
        self.bot.session.chats.setdefault(chat_wire["id"], chat_wire)
        message = {"message_id": self.bot.session.next_message_id(), "date": _now(),
                   "chat": chat_wire, "from": _wire(user), **content}
        return self._update({"message": message})

    def _update(self, body: dict) -> Update:
        return Update.model_validate({"update_id": next(self._update_ids), **body},
                                     context={"bot": self.bot})


def _caption(caption: str | None) -> dict:
    return {"caption": caption} if caption else {}
