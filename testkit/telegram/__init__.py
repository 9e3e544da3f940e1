"""A fake Telegram Bot API server that checks every call against the official spec (Bot API 10.1).

    async with FakeTelegram(token="123456:TEST", flood_control=True) as fake:   # starts on 127.0.0.1
        bot = Bot("123456:TEST", session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
        polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
        ann = fake.user(111, first_name="Ann", language_code="en")
        await ann.send_command("/start", "promo42")              # message update with bot_command entity
        menu = await ann.wait_for_message(lambda m: m.buttons)   # the bot's reply, as Ann sees it
        answer = await ann.tap("Buy")                            # callback_query → answerCallbackQuery
        outcome = await ann.pay()                                # pre_checkout → successful_payment
        print(ann.render()); assert not fake.flood_events; await dp.stop_polling(); await polling

Every request is recorded in `fake.calls` (`await fake.wait_for_call("sendPhoto")`); 429s in
`fake.flood_events`; knobs in `fake.faults`; `ann.save_media(dir)` writes the files Ann received.
The HTTP control API (/_fake/...) is described in control.py; `python -m testkit.telegram` serves.
"""

from .errors import ApiError, FakeUserError
from .faults import Faults
from .flood import FloodEvent
from .server import FakeTelegram
from .spec import Spec, Upload
from .transport import Call
from .updates import Delivery
from .user import CallbackAnswer, FakeUser, MediaItem, PaymentOutcome, TranscriptEntry

__all__ = [
    "ApiError", "Call", "CallbackAnswer", "Delivery", "FakeTelegram", "FakeUser", "FakeUserError", "Faults",
    "FloodEvent", "MediaItem", "PaymentOutcome", "Spec", "TranscriptEntry", "Upload",
]
