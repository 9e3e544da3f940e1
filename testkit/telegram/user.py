"""The simulated user side: a person who writes to the bot, taps buttons, pays, and blocks it."""

from __future__ import annotations

import asyncio
import copy
import secrets
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import FakeUserError
from .limits import image_size
from .state import ChatMessage, PreCheckoutRecord, UserInfo, CallbackQueryRecord, Payment, StoredFile, file_object

if TYPE_CHECKING:
    from .server import FakeTelegram

_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
               "video/mp4": ".mp4"}
# How long a simulated user waits for the bot by default. It only bounds a hang: every wait ends
# as soon as its condition holds, so a generous bound costs nothing and survives a loaded machine.
WAIT_TIMEOUT_S = 20.0
_KINDS = ("text", "photo", "video", "animation", "document", "sticker", "voice", "audio", "invoice",
          "successful_payment", "refunded_payment")


@dataclass
class MediaItem:
    kind: str
    file_name: str | None
    mime_type: str | None
    data: bytes | None = field(repr=False)
    url: str | None = None
    file_id: str | None = None


@dataclass
class TranscriptEntry:
    """A message as the user sees it now (edits applied)."""

    message_id: int
    from_bot: bool
    kind: str
    text: str  # the text, or the caption of a media message ("" if none)
    buttons: list[list[str]]
    media: list[MediaItem]
    invoice: dict[str, Any] | None
    edited: bool
    raw: dict[str, Any] = field(repr=False)


@dataclass
class CallbackAnswer:
    query_id: str
    answered: bool
    text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class PaymentOutcome:
    ok: bool
    error_message: str | None = None
    timed_out: bool = False
    charge_id: str | None = None
    message: TranscriptEntry | None = None


def entry_for(stored: ChatMessage) -> TranscriptEntry:
    msg = stored.message
    kind = next((k for k in _KINDS if k in msg), "other")
    markup = msg.get("reply_markup") or {}
    buttons = [[b.get("text", "") for b in row] for row in markup.get("inline_keyboard", [])]
    media = [MediaItem(f.kind, f.file_name, f.mime_type, f.data, f.url, f.file_id) for f in stored.files]
    return TranscriptEntry(stored.message_id, stored.outgoing, kind, msg.get("text") or msg.get("caption") or "",
                           buttons, media, msg.get("invoice"), "edit_date" in msg, msg)


class FakeUser:
    def __init__(self, fake: FakeTelegram, info: UserInfo) -> None:
        self.fake = fake
        self.info = info
        self.callback_answers: list[CallbackAnswer] = []
        self.payments: list[PaymentOutcome] = []
        self._cursor = 0
        self._returned: set[int] = set()

    def __repr__(self) -> str:
        return f"FakeUser(id={self.id}, first_name={self.info.first_name!r})"

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def chat(self) -> Any:
        return self.fake.chats[self.id]

    # --- what the user sees -------------------------------------------------------------------
    @property
    def transcript(self) -> list[TranscriptEntry]:
        return [entry_for(m) for m in self.chat.live()]

    @property
    def bot_messages(self) -> list[TranscriptEntry]:
        return [e for e in self.transcript if e.from_bot]

    def render(self) -> str:
        """The chat as plain text, one block per message."""
        lines = []
        for e in self.transcript:
            who = self.fake.bot_first_name if e.from_bot else self.info.first_name
            body = e.text
            if e.media:
                files = ", ".join(f"{m.kind} {m.file_name or m.url or m.file_id} "
                                  + (f"({len(m.data)} bytes)" if m.data is not None else "(by URL)")
                                  for m in e.media)
                body = f"[{files}] {body}".rstrip()
            if e.invoice:
                body = f'[invoice "{e.invoice["title"]}" {e.invoice["total_amount"]} {e.invoice["currency"]}]'
            if e.kind in ("successful_payment", "refunded_payment"):
                p = e.raw[e.kind]
                body = f"[{e.kind.replace('_', ' ')} {p['total_amount']} {p['currency']}]"
            if e.kind == "other" and not body:
                body = "[message]"
            lines.append(f"{who}: {body}{' (edited)' if e.edited else ''}")
            for row in e.buttons:
                lines.append("    " + " ".join(f"[{t}]" for t in row))
        return "\n".join(lines)

    def save_media(self, folder: str | Path) -> list[Path]:
        """Write every file in the transcript that has bytes to folder; returns the paths."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        saved = []
        for entry in self.transcript:
            for n, item in enumerate(entry.media):
                if item.data is None:
                    continue
                name = Path(item.file_name or f"{item.kind}{_EXTENSIONS.get(item.mime_type or '', '')}").name
                path = target / f"{entry.message_id:04d}_{n}_{name}"
                path.write_bytes(item.data)
                saved.append(path)
        return saved

    async def wait_for_message(self, predicate: Callable[[TranscriptEntry], bool] | None = None,
                               timeout: float = WAIT_TIMEOUT_S) -> TranscriptEntry:
        """The first bot message sent after the user's last action, not returned here before, that
        matches predicate; waits for it (woken by the fake's state changes, no blind sleeps)."""
        def check() -> TranscriptEntry | None:
            for e in self.bot_messages:
                if e.message_id > self._cursor and e.message_id not in self._returned \
                        and (predicate is None or predicate(e)):
                    return e
            return None

        entry = await self.fake.notifier.wait_for(check, timeout, f"a bot message to user {self.id}")
        self._returned.add(entry.message_id)
        return entry

    async def wait_until(self, condition: Callable[[list[TranscriptEntry]], Any], timeout: float = WAIT_TIMEOUT_S) -> Any:
        """Wait until condition(transcript) is truthy (e.g. after an edit); returns its value."""
        return await self.fake.notifier.wait_for(lambda: condition(self.transcript), timeout, "transcript condition")

    # --- what the user does -------------------------------------------------------------------
    def _post(self, content: dict[str, Any], files: list[StoredFile] | None = None) -> TranscriptEntry:
        if self.chat.blocked:
            self.unblock()  # writing to a bot you blocked restarts it, as in the apps
        stored = self.fake.post_message(self.chat, content, outgoing=False, files=files)
        self.fake.emit({"message": stored.message})
        self._cursor = stored.message_id
        return entry_for(stored)

    async def send_text(self, text: str, *, reply_to: TranscriptEntry | None = None) -> TranscriptEntry:
        """`reply_to`: a message of this chat the text is a Telegram reply to."""
        return self._post({"text": text, **self._reply(reply_to)})

    def _reply(self, reply_to: TranscriptEntry | None) -> dict[str, Any]:
        if reply_to is None:
            return {}
        quoted = {k: v for k, v in self.chat.messages[reply_to.message_id].message.items()
                  if k != "reply_to_message"}
        return {"reply_to_message": copy.deepcopy(quoted)}

    async def send_command(self, command: str, args: str | None = None) -> TranscriptEntry:
        """"/start" or "start", with deep-link args after a space; carries a bot_command entity."""
        name = command if command.startswith("/") else f"/{command}"
        text = f"{name} {args}" if args else name
        return self._post({"text": text, "entities": [{"offset": 0, "length": len(name), "type": "bot_command"}]})

    async def send_photo(self, data: bytes, caption: str | None = None, *,
                         reply_to: TranscriptEntry | None = None) -> TranscriptEntry:
        size = image_size(data)
        if size is None:
            raise FakeUserError("photo bytes are not a PNG, JPEG, GIF or WebP image")
        stored = self.fake.files.add("photo", data, width=size[0], height=size[1], mime_type=_image_mime(data))
        content: dict[str, Any] = {"photo": self.fake.files.photo_sizes(stored),
                                   **self._reply(reply_to)}
        if caption:
            content["caption"] = caption
        return self._post(content, [stored])

    async def send_album(self, photos: list[bytes], caption: str | None = None) -> list[TranscriptEntry]:
        """Photos sent together (a media group): Telegram delivers each as its own message and
        update, all with one media_group_id and the caption on the first."""
        group = secrets.token_hex(8)
        entries = []
        for i, data in enumerate(photos):
            size = image_size(data)
            if size is None:
                raise FakeUserError("photo bytes are not a PNG, JPEG, GIF or WebP image")
            stored = self.fake.files.add("photo", data, width=size[0], height=size[1],
                                         mime_type=_image_mime(data))
            content: dict[str, Any] = {"photo": self.fake.files.photo_sizes(stored),
                                       "media_group_id": group}
            if caption and i == 0:
                content["caption"] = caption
            entries.append(self._post(content, [stored]))
        return entries

    async def send_document(self, data: bytes, file_name: str, mime_type: str | None = None,
                            caption: str | None = None) -> TranscriptEntry:
        stored = self.fake.files.add("document", data, file_name=file_name,
                                     mime_type=mime_type or _image_mime(data) or "application/octet-stream")
        return self._post(_with_caption({"document": file_object(stored)}, caption), [stored])

    async def send_video(self, data: bytes, *, duration: int = 1, width: int = 640, height: int = 360,
                         file_name: str = "video.mp4", caption: str | None = None) -> TranscriptEntry:
        stored = self.fake.files.add("video", data, file_name=file_name, mime_type="video/mp4",
                                     width=width, height=height, duration=duration)
        return self._post(_with_caption({"video": file_object(stored)}, caption), [stored])

    async def send_voice(self, data: bytes, *, duration: int = 3, mime_type: str = "audio/ogg",
                         caption: str | None = None) -> TranscriptEntry:
        """A voice message (Telegram gives its length in whole seconds)."""
        stored = self.fake.files.add("voice", data, mime_type=mime_type, duration=duration)
        return self._post(_with_caption({"voice": file_object(stored)}, caption), [stored])

    async def send_sticker(self, data: bytes = b"RIFF\x00\x00\x00\x00WEBP", emoji: str = "👍") -> TranscriptEntry:
        stored = self.fake.files.add("sticker", data, width=512, height=512, mime_type="image/webp")
        sticker = {**file_object(stored), "emoji": emoji}
        return self._post({"sticker": sticker}, [stored])

    def _find_button(self, text: str, message: int | TranscriptEntry | None) -> tuple[ChatMessage, dict[str, Any]]:
        wanted = message.message_id if isinstance(message, TranscriptEntry) else message
        for stored in reversed(self.chat.live()):
            if not stored.outgoing or (wanted is not None and stored.message_id != wanted):
                continue
            for row in (stored.message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == text:
                        return stored, button
        raise FakeUserError(f"no inline button {text!r} on {'message ' + str(wanted) if wanted else 'any bot message'}")

    async def tap(self, text: str, message: int | TranscriptEntry | None = None,
                  timeout: float = WAIT_TIMEOUT_S) -> CallbackAnswer | PaymentOutcome:
        """Tap an inline button by its text; returns the bot's answerCallbackQuery (answered=False
        when it did not answer within timeout). A pay button pays the invoice instead."""
        stored, button = self._find_button(text, message)
        if button.get("pay"):
            return await self.pay(stored.message_id)
        record = self.press(text, message)
        try:
            await self.fake.notifier.wait_for(lambda: record.answer is not None, timeout, "answerCallbackQuery")
            answer = record.answer or {}
            result = CallbackAnswer(record.id, True, answer.get("text"), bool(answer.get("show_alert")),
                                    answer.get("url"))
        except asyncio.TimeoutError:
            result = CallbackAnswer(record.id, False)
        self.callback_answers.append(result)
        return result

    def press(self, text: str, message: int | TranscriptEntry | None = None) -> CallbackQueryRecord:
        """Send the callback query of an inline button without waiting for the answer (the
        benchmark's crowds wait on their own); its `answer` is set once the bot answers."""
        stored, button = self._find_button(text, message)
        if "callback_data" not in button:
            raise FakeUserError(f"button {text!r} is not a callback button")
        record = CallbackQueryRecord(self.fake.new_id(), self.id, self.id, stored.message_id,
                                     button["callback_data"], self.fake.clock())
        self.fake.callback_queries[record.id] = record
        self.fake.emit({"callback_query": {
            "id": record.id, "from": self.info.as_user(), "message": dict(stored.message),
            "chat_instance": str(-self.id * 7919), "data": record.data}})
        return record

    async def pay(self, message: int | TranscriptEntry | None = None, *, link: str | None = None,
                  timeout: float | None = None) -> PaymentOutcome:
        """Pay an invoice (the latest one, a given message, or an invoice link): pre-checkout, then
        successful_payment only if the bot said ok in time (fake.precheckout_timeout, 10 s)."""
        invoice = self._invoice(message, link)
        record = PreCheckoutRecord(self.fake.new_id(), self.id, invoice, self.fake.clock())
        self.fake.precheckout_queries[record.id] = record
        total = sum(p["amount"] for p in invoice["prices"])
        self.fake.emit({"pre_checkout_query": {
            "id": record.id, "from": self.info.as_user(), "currency": invoice["currency"],
            "total_amount": total, "invoice_payload": invoice["payload"]}})
        wait = self.fake.precheckout_timeout if timeout is None else timeout
        try:
            await self.fake.notifier.wait_for(lambda: record.answer is not None, wait, "answerPreCheckoutQuery")
            answer = record.answer or {}
        except asyncio.TimeoutError:
            outcome = PaymentOutcome(False, timed_out=True)
        else:
            outcome = self._complete(answer, invoice, total) if answer["ok"] else \
                PaymentOutcome(False, answer.get("error_message"))
        self.payments.append(outcome)
        return outcome

    def _invoice(self, message: int | TranscriptEntry | None, link: str | None) -> dict[str, Any]:
        if link is not None:
            if link not in self.fake.invoice_links:
                raise FakeUserError("unknown invoice link")
            return self.fake.invoice_links[link]
        wanted = message.message_id if isinstance(message, TranscriptEntry) else message
        for stored in reversed(self.chat.live()):
            if stored.invoice and (wanted is None or stored.message_id == wanted):
                return stored.invoice
        raise FakeUserError("no invoice to pay in this chat")

    def _complete(self, answer: dict[str, Any], invoice: dict[str, Any], total: int) -> PaymentOutcome:
        charge_id = f"stx{secrets.token_urlsafe(18)}"
        now = self.fake.now()
        self.fake.payments[charge_id] = Payment(charge_id, self.id, total, invoice["payload"], now)
        self.fake.star_transactions.append({
            "id": charge_id, "amount": total, "date": now,
            "source": {"type": "user", "transaction_type": "invoice_payment", "user": self.info.as_user(),
                       "invoice_payload": invoice["payload"]}})
        paid = {"currency": invoice["currency"], "total_amount": total, "invoice_payload": invoice["payload"],
                "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}
        entry = self._post({"successful_payment": paid})
        return PaymentOutcome(True, charge_id=charge_id, message=entry)

    def block(self) -> None:
        """Block the bot: later sends to this chat get 403; the bot is told via my_chat_member."""
        self._member_update("member", "kicked")
        self.chat.blocked = True

    def unblock(self) -> None:
        self.chat.blocked = False
        self._member_update("kicked", "member")

    def _member_update(self, old: str, new: str) -> None:
        bot = self.fake.bot_user()
        new_member: dict[str, Any] = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            old_member["until_date"] = 0
        self.fake.emit({"my_chat_member": {"chat": self.info.as_chat(), "from": self.info.as_user(),
                                           "date": self.fake.now(), "old_chat_member": old_member,
                                           "new_chat_member": new_member}})


def _with_caption(content: dict[str, Any], caption: str | None) -> dict[str, Any]:
    if caption:
        content["caption"] = caption
    return content


def _image_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"GIF8":
        return "image/gif"
    return None
