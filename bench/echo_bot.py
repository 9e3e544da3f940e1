"""The baseline of the updates measure: a bare aiogram bot on the same fake Telegram.

One message handler answering with send_message (carrying the button the crowd taps) and one
callback handler answering answer_callback_query + edit_message_text, served by aiogram's
SimpleRequestHandler on aiohttp — what any aiogram bot does at the least. Run as
`python -m bench.echo_bot` with BOT_TOKEN, TELEGRAM_API_BASE_URL, SERVER_PORT and BUTTON in the
environment; prints READY once its webhook is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

READY = "echo bot ready"
PATH = "/tg/webhook"


async def echo(message: Message, bot: Bot, button: str) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=button, callback_data="b")]])
    await bot.send_message(message.chat.id, f"echo: {message.text or '…'}", reply_markup=markup)


async def tapped(query: CallbackQuery, bot: Bot) -> None:
    await bot.answer_callback_query(query.id)
    if query.message is not None:
        await bot.edit_message_text(chat_id=query.message.chat.id, message_id=query.message.message_id,
                                    text=f"tapped {query.data}")


def router() -> Router:
    r = Router()
    r.message.register(echo)
    r.callback_query.register(tapped, F.data)
    return r


async def serve(token: str, api_base: str, port: int, button: str) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    bot = Bot(token, session=session)
    dispatcher = Dispatcher(button=button)
    dispatcher.include_router(router())
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot).register(app, path=PATH)
    setup_application(app, dispatcher, bot=bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await bot.set_webhook(f"http://127.0.0.1:{port}{PATH}")
    print(READY, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await bot.session.close()


def main() -> None:
    asyncio.run(serve(os.environ["BOT_TOKEN"], os.environ["TELEGRAM_API_BASE_URL"],
                      int(os.environ["SERVER_PORT"]), os.environ.get("BUTTON", "💰 Balance")))


if __name__ == "__main__":
    main()
