"""The price on the Generate button is the charge, over the whole catalog: exhaustively for every
model on sale and every option combination the menu offers (the card against the service's
pricing), and by hypothesis through the real GenerationService.start over SQLite — including
markup-free admin prices set at runtime, which apply to new orders only."""

from __future__ import annotations

import itertools
import re

from aiogram.types import InlineKeyboardMarkup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services.generation import SourceImage
from handlers import screens
from kie_client.catalog import MODELS, Catalog, RuntimeOverride
from tests.unit.pipeline.fakes import PNG
from tests.unit.pipeline.harness import CHAT_ID, PROMPT, USER_ID

PHOTO = SourceImage(data=PNG, mime_type="image/png", file_name="p.png")
RICH = 10**8
COMBOS = [(spec.key, combo) for spec in MODELS for combo in Catalog().combinations(spec.key)]


def button_price(markup: InlineKeyboardMarkup) -> int:
    text = markup.inline_keyboard[0][0].text  # "Generate · N⭐"
    match = re.fullmatch(r"Generate · (\d+)⭐", text)
    assert match, text
    return int(match.group(1))


def card_price(catalog: Catalog, key: str, combo: dict, seconds: float | None = None) -> int:
    draft = {"d": 1, "model": key, "opts": combo, "prompt": PROMPT, "photo": None,
             "audio": {"seconds": seconds} if seconds is not None else None}
    return button_price(screens.card("en", catalog, draft, balance=RICH)[1])


async def test_card_price_is_the_service_price_for_every_combination(world):
    generations = world.generations
    catalog = generations.catalog
    assert len(COMBOS) > 1500  # the whole catalog, not a sample
    for key, combo in COMBOS:
        spec = catalog.get(key)
        for seconds in ([None, 1, 7.2, 15, 60] if spec.audio_input else [None]):
            assert card_price(catalog, key, combo, seconds) == generations.price(
                key, catalog.normalise_options(key, combo), audio_seconds=seconds), (key, combo, seconds)
    for spec in catalog.models():
        prices = [catalog.price(spec.key, c, audio_seconds=1) for c in catalog.combinations(spec.key)]
        assert min(prices) == catalog.from_price(spec.key)  # the menu's "from N⭐"


ON_SALE = [(k, c) for k, c in COMBOS if k not in {"infinitalk", "kling_avatar", "kling_avatar_pro"}
           and not k.startswith("veo")]
counter = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.sampled_from(ON_SALE), admin_price=st.none() | st.integers(0, 400))
async def test_the_charge_equals_the_button(make_world, choice, admin_price):
    key, combo = choice
    world = await make_world(max_in_flight=None)
    catalog = world.generations.catalog
    await world.repository.admin_set(USER_ID, RICH, admin_id=1)
    catalog.apply_runtime({key: RuntimeOverride(price=admin_price)})
    shown = card_price(catalog, key, combo)
    before = await world.balance()
    spec = catalog.get(key)
    started = await world.generations.start(
        user_id=USER_ID, chat_id=CHAT_ID, model_key=key, options=combo, prompt=PROMPT,
        request_key=f"card-{next(counter)}", source_image=PHOTO if spec.image_input else None)
    assert started.created and started.generation.cost == shown == before - await world.balance()
    if admin_price is not None and combo == catalog.defaults(key):
        assert shown == admin_price
    # A later admin change moves new prices, never the charged one.
    catalog.apply_runtime({key: RuntimeOverride(price=(admin_price or 0) + 7)})
    assert (await world.row(started.generation.id)).cost == shown
    await world.close()
