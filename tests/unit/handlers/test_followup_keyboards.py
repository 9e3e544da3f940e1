"""Follow-up and variant buttons: short callback data, bounds on forged values, prices on the
buttons, and the cached card keyboard left as built."""

from __future__ import annotations

import pytest

from bot.services.followups import FollowAction, Offer
from handlers import keyboards
from handlers.callbacks import FollowCb, VariantsCb

BIG = 2**63 - 1


def test_follow_up_data_fits_and_forged_values_do_not_unpack():
    packed = [FollowCb(action=a, generation_id=BIG).pack() for a in FollowAction]
    packed += [VariantsCb(draft=BIG, n=n).pack() for n in range(1, 5)]
    assert all(len(p.encode()) <= 64 for p in packed)
    assert FollowCb(action=FollowAction.UPSCALE, generation_id=41).pack() == "fu:up:41"
    for data, cb in (("fu:zz:1", FollowCb), (f"fu:up:{2**63}", FollowCb), ("vn:1:0", VariantsCb),
                     ("vn:1:5", VariantsCb), ("fu:up:-1", FollowCb)):
        with pytest.raises((ValueError, TypeError)):
            cb.unpack(data)


def test_follow_up_keyboard_prices_every_button_and_numbers_an_albums_pictures():
    offers = (Offer(FollowAction.UPSCALE, "topaz_upscale", "Topaz Upscale", 10, {}),
              Offer(FollowAction.BETTER, "nano_banana_pro", "Nano Banana Pro", 18, {}))
    kb = keyboards.followup_kb("en", 7, again_price=8, animate_price=None, offers=offers,
                               variants=(7, 8, 9))
    rows = [[(b.text, b.callback_data) for b in row] for row in kb.inline_keyboard]
    assert rows == [[("1", "g:show:7"), ("2", "g:show:8"), ("3", "g:show:9")],
                    [("🔁 Again · 8⭐", "g:again:7"), ("📎 Original file", "g:doc:7")],
                    [("⬆️ Upscale · 10⭐", "fu:up:7")],
                    [("💎 Redo in Nano Banana Pro · 18⭐", "fu:bt:7")]]


def test_the_variants_row_does_not_change_the_cached_card_keyboard():
    card = keyboards.card_kb("ru", 3, 24)
    before = card.model_dump()
    kb = keyboards.with_variants(card, "ru", 3, 3)
    assert card.model_dump() == before
    assert [b.text for b in kb.inline_keyboard[1]] == ["Варианты: 1", "2", "✅ 3", "4"]
    assert kb.inline_keyboard[1][2].callback_data == "vn:3:3"
