"""A small aiogram bot that exercises every method the fake models, and the conversation that
drives it. Used by both the polling and the webhook tests."""

from __future__ import annotations

import io

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (BotCommand, BotCommandScopeDefault, BufferedInputFile, CallbackQuery,
                           InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, LabeledPrice, Message,
                           PreCheckoutQuery)
from PIL import Image

from testkit.telegram import FakeTelegram

VIDEO_URL = "https://cdn.example.com/clip.mp4"


def png_bytes(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def keyboard(*labels: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in labels]])


def make_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(f"Welcome! args={command.args}", reply_markup=keyboard(("Edit me", "edit"), ("Hi", "hi")))

    @router.callback_query(F.data == "edit")
    async def edit(cb: CallbackQuery) -> None:
        await cb.answer("editing")
        await cb.message.edit_text("Edited once", reply_markup=keyboard(("Again", "again")))
        try:  # identical edit → "message is not modified"
            await cb.message.edit_text("Edited once", reply_markup=keyboard(("Again", "again")))
        except TelegramBadRequest as exc:
            await cb.message.answer(f"not modified: {'message is not modified' in exc.message}")

    @router.callback_query(F.data == "again")
    async def again(cb: CallbackQuery) -> None:
        await cb.answer()
        await cb.message.edit_reply_markup(reply_markup=None)

    @router.callback_query(F.data == "hi")
    async def hi(cb: CallbackQuery) -> None:
        pass  # never answers: the user sees an unanswered query

    @router.message(F.photo)
    async def photo(message: Message, bot: Bot) -> None:
        data = await bot.download(message.photo[-1])
        raw = data.read()
        await bot.send_chat_action(message.chat.id, "upload_photo")
        sent = await message.answer_photo(BufferedInputFile(raw, "echo.png"), caption=f"got {len(raw)} bytes")
        await bot.edit_message_caption(chat_id=message.chat.id, message_id=sent.message_id, caption="echoed")
        await message.answer_document(BufferedInputFile(raw, "original.png"))

    @router.message(F.document)
    async def document(message: Message, bot: Bot) -> None:
        f = await bot.get_file(message.document.file_id)
        data = await bot.download_file(f.file_path)
        await message.answer(f"document {message.document.file_name} {message.document.mime_type} "
                             f"{len(data.read())} bytes")

    @router.message(F.sticker)
    async def sticker(message: Message) -> None:
        await message.answer_sticker(message.sticker.file_id)

    @router.message(F.video)
    async def video(message: Message) -> None:
        await message.answer_video(message.video.file_id, caption="same video back")

    @router.message(Command("video"))
    async def video_url(message: Message) -> None:
        await message.answer_video(VIDEO_URL, caption="by url")

    @router.message(Command("gif"))
    async def gif(message: Message) -> None:
        await message.answer_animation(BufferedInputFile(b"GIF89a\x02\x00\x02\x00" + b"\x00" * 20, "a.gif"))

    @router.message(Command("album"))
    async def album(message: Message) -> None:
        await message.answer_media_group([
            InputMediaPhoto(media=BufferedInputFile(png_bytes(color="blue"), "a.png"), caption="first"),
            InputMediaPhoto(media=BufferedInputFile(png_bytes(color="green"), "b.png")),
        ])

    @router.message(Command("temp"))
    async def temp(message: Message) -> None:
        sent = await message.answer("temporary")
        await sent.delete()
        await message.answer("deleted one")

    @router.message(Command("cmds"))
    async def cmds(message: Message, bot: Bot) -> None:
        en = await bot.get_my_commands(scope=BotCommandScopeDefault(), language_code="en")
        ru = await bot.get_my_commands(language_code="ru")
        await message.answer(f"en={[c.command for c in en]} ru={[c.command for c in ru]}")

    @router.message(Command("buy"))
    async def buy(message: Message) -> None:
        await message.answer_invoice(title="10 credits", description="Credit pack", payload="pack-10",
                                     currency="XTR", prices=[LabeledPrice(label="Pack", amount=50)])

    @router.message(Command("link"))
    async def link(message: Message, bot: Bot) -> None:
        url = await bot.create_invoice_link(title="Link pack", description="By link", payload="pack-link",
                                            currency="XTR", prices=[LabeledPrice(label="Pack", amount=7)])
        await message.answer(f"link {url}")

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        if query.invoice_payload == "refuse-me":
            await query.answer(ok=False, error_message="Sold out")
        else:
            await query.answer(ok=True)

    @router.message(F.successful_payment)
    async def paid(message: Message, bot: Bot) -> None:
        charge = message.successful_payment.telegram_payment_charge_id
        await message.answer(f"paid {message.successful_payment.total_amount}")
        if message.successful_payment.invoice_payload == "pack-10":
            await bot.refund_star_payment(message.from_user.id, charge)
            try:
                await bot.refund_star_payment(message.from_user.id, charge)
            except TelegramBadRequest as exc:
                await message.answer(f"second refund: {exc.message}")
            txs = await bot.get_star_transactions()
            await message.answer(f"transactions {len(txs.transactions)} first={txs.transactions[0].id == charge}")

    @router.message(F.refunded_payment)
    async def refunded(message: Message) -> None:
        await message.answer(f"refunded {message.refunded_payment.total_amount}")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    return router


async def set_commands(bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")], language_code="en")
    await bot.set_my_commands([BotCommand(command="start", description="Начать"),
                               BotCommand(command="buy", description="Купить")], language_code="ru")


async def run_conversation(fake: FakeTelegram) -> None:
    """Drive the bot through every modelled method and check the user's transcript."""
    ann = fake.user(111, first_name="Ann", language_code="en", username="ann")
    first_call = len(fake.calls)

    await ann.send_command("/start", "promo42")
    welcome = await ann.wait_for_message()
    assert welcome.text == "Welcome! args=promo42" and welcome.buttons == [["Edit me", "Hi"]]

    unanswered = await ann.tap("Hi", timeout=0.3)
    assert not unanswered.answered and ann.callback_answers == [unanswered]

    answer = await ann.tap("Edit me")
    assert answer.answered and answer.text == "editing"
    note = await ann.wait_for_message(lambda m: m.text.startswith("not modified"))
    assert note.text == "not modified: True"
    edited = [e for e in ann.transcript if e.message_id == welcome.message_id][0]
    assert edited.text == "Edited once" and edited.buttons == [["Again"]] and edited.edited

    await ann.tap("Again")
    await ann.wait_until(lambda t: next(e for e in t if e.message_id == welcome.message_id).buttons == [])

    picture = png_bytes(1200, 900)
    await ann.send_photo(picture, caption="make it blue")
    echoed = await ann.wait_for_message(lambda m: m.kind == "photo")
    doc = await ann.wait_for_message(lambda m: m.kind == "document")
    await ann.wait_until(lambda t: any(e.text == "echoed" for e in t))
    assert echoed.media[0].data == picture and doc.media[0].file_name == "original.png"
    assert doc.media[0].data == picture
    assert "upload_photo" in fake.chats[ann.id].actions

    await ann.send_document(png_bytes(), "drawing.png", "image/png")
    got = await ann.wait_for_message(lambda m: m.text.startswith("document"))
    assert got.text == f"document drawing.png image/png {len(png_bytes())} bytes"

    await ann.send_sticker()
    sticker = await ann.wait_for_message(lambda m: m.kind == "sticker")
    assert sticker.media[0].kind == "sticker"

    await ann.send_video(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, duration=3)
    video = await ann.wait_for_message(lambda m: m.kind == "video")
    assert video.text == "same video back" and video.media[0].data.startswith(b"\x00\x00\x00\x18ftyp")

    await ann.send_command("/video")
    by_url = await ann.wait_for_message(lambda m: m.kind == "video")
    assert by_url.media[0].url == VIDEO_URL and by_url.media[0].data is None

    await ann.send_command("/gif")
    gif = await ann.wait_for_message(lambda m: m.kind == "animation")
    assert gif.media[0].file_name == "a.gif"

    await ann.send_command("/album")
    first = await ann.wait_for_message(lambda m: m.kind == "photo")
    second = await ann.wait_for_message(lambda m: m.kind == "photo")
    assert first.text == "first" and second.raw["media_group_id"] == first.raw["media_group_id"]

    await ann.send_command("/temp")
    await ann.wait_for_message(lambda m: m.text == "deleted one")
    assert not any(e.text == "temporary" for e in ann.transcript)

    await ann.send_command("/cmds")
    cmds = await ann.wait_for_message(lambda m: m.text.startswith("en="))
    assert cmds.text == "en=['start'] ru=['start', 'buy']"

    await ann.send_command("/link")
    link_msg = await ann.wait_for_message(lambda m: m.text.startswith("link "))
    link_outcome = await ann.pay(link=link_msg.text.split()[1])
    assert link_outcome.ok
    await ann.wait_for_message(lambda m: m.text == "paid 7")

    await ann.send_command("/buy")
    invoice = await ann.wait_for_message(lambda m: m.kind == "invoice")
    assert invoice.invoice["currency"] == "XTR" and invoice.invoice["total_amount"] == 50
    outcome = await ann.pay()
    assert outcome.ok and outcome.charge_id
    await ann.wait_for_message(lambda m: m.text == "paid 50")
    rejected = await ann.wait_for_message(lambda m: m.text.startswith("second refund"))
    assert rejected.text == "second refund: Bad Request: CHARGE_ALREADY_REFUNDED"
    txs = await ann.wait_for_message(lambda m: m.text.startswith("transactions"))
    assert txs.text.startswith("transactions 3")  # link payment, this payment, its refund
    await ann.wait_for_message(lambda m: m.text == "refunded 50")
    assert fake.payments[outcome.charge_id].refunded

    await ann.send_text("hello")
    assert (await ann.wait_for_message()).text == "echo: hello"

    rendered = ann.render()
    assert "Ann: /start promo42" in rendered and "[invoice \"10 credits\" 50 XTR]" in rendered
    failures = [c for c in fake.calls[first_call:] if not c.ok and c.method not in ("editMessageText", "refundStarPayment")]
    assert failures == [], failures
    methods = {c.method for c in fake.calls}
    expected = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "editMessageCaption",
                "deleteMessage", "answerCallbackQuery", "sendChatAction", "setMyCommands", "getMyCommands",
                "getFile", "sendPhoto", "sendVideo", "sendDocument", "sendAnimation", "sendSticker",
                "sendMediaGroup", "sendInvoice", "createInvoiceLink", "answerPreCheckoutQuery",
                "refundStarPayment", "getStarTransactions"}
    assert expected <= methods, expected - methods
