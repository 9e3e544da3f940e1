"""Template buttons: the longest callback data fits Telegram's 64 bytes, forged numbers do not
unpack (the fallback's "expired" answer), and the card's keyboard carries the price it shows."""

from __future__ import annotations

import pytest

from bot.templates.loader import KEY_RE, MAX_PRICE
from handlers.callbacks import TplAction, TplCb
from handlers.keyboards import main_menu, template_card_kb, template_wait_kb


def test_the_longest_template_button_fits_64_bytes():
    key = "k" * 24
    assert KEY_RE.match(key)
    for action in TplAction:
        packed = TplCb(action=action, index=2**31 - 1, key=key, price=MAX_PRICE).pack()
        assert len(packed.encode()) <= 64, packed


@pytest.mark.parametrize("data", ["tp:u:0:figurine_3d:-1", "tp:p:99999999999:::0", "tp:z:0::0"])
def test_forged_template_buttons_do_not_unpack(data):
    with pytest.raises((ValueError, TypeError)):
        TplCb.unpack(data)


def test_the_card_keyboard_carries_its_price_and_pages_wrap():
    kb = template_card_kb("en", 0, 9, "figurine_3d", 10)
    rows = [[(b.text, b.callback_data) for b in row] for row in kb.inline_keyboard]
    assert rows[0] == [("◀", TplCb(action=TplAction.PAGE, index=8).pack()),
                       ("▶", TplCb(action=TplAction.PAGE, index=1).pack())]
    assert rows[1] == [("Use · 10⭐", TplCb(action=TplAction.USE, key="figurine_3d", price=10).pack())]
    single = template_card_kb("ru", 0, 1, "x", 7)
    assert [[b.text for b in row] for row in single.inline_keyboard] == [["Использовать · 7⭐"], ["🏠 Меню"]]
    assert template_wait_kb("en").inline_keyboard[0][0].text == "✖ Cancel"
    assert any(b.text == "✨ Templates" for row in main_menu("en").inline_keyboard for b in row)
