"""`/models` (ADMIN_IDS only): the catalog at runtime — list, switch a model off or on, set its
price. Stored in the database (bot.services.models.ModelAdmin), so every process follows within
seconds and a restart keeps it; orders already charged keep the price they were charged.

    /models                      every model: on/off, key, name, ⭐ at its default options
    /models off <key>            no new orders (menus hide it; in-flight ones finish)
    /models on <key>
    /models price <key> <N>      N⭐ at the default options; other options keep their ratios
    /models price <key> reset    back to PRICE_OVERRIDES / the data file (with PRICE_MARKUP)
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.services.models import ModelAdmin
from handlers.admin import IsAdmin
from handlers.texts import tr
from kie_client.catalog import Catalog, CatalogError

_MAX_PRICE = 100_000
_CHUNK = 3500  # characters per message, below Telegram's 4096


def listing(lang: str, models: ModelAdmin) -> list[str]:
    lines = []
    for line in models.lines():
        mark = "✅" if line.enabled else "⛔"
        source = "" if line.price_source == "data" else tr(lang, f"adm_models_src_{line.price_source}")
        lines.append(tr(lang, "adm_models_line", mark=mark, model=line.key, name=line.name,
                        price=line.price, source=source))
    chunks, current = [], tr(lang, "adm_models_title")
    for text in lines:
        if len(current) + len(text) + 1 > _CHUNK:
            chunks.append(current)
            current = ""
        current = f"{current}\n{text}" if current else text
    chunks.append(current + "\n\n" + tr(lang, "adm_models_usage"))
    return chunks


async def models_command(message: Message, command: CommandObject, lang: str, models: ModelAdmin,
                         catalog: Catalog) -> None:
    await models.refresh(force=True)
    parts = (command.args or "").split()
    if not parts:
        for chunk in listing(lang, models):
            await message.answer(chunk)
        return
    action, rest = parts[0].lower(), parts[1:]
    admin_id = message.from_user.id
    try:
        if action in ("on", "off") and len(rest) == 1:
            await models.set_enabled(rest[0], action == "on", admin_id=admin_id)
            spec = catalog.get(rest[0])
            await message.answer(tr(lang, f"adm_models_{action}", name=spec.name, model=spec.key))
            return
        if action == "price" and len(rest) == 2:
            key, value = rest
            if value.lower() == "reset":
                await models.set_price(key, None, admin_id=admin_id)
            elif value.isdigit() and int(value) <= _MAX_PRICE:
                await models.set_price(key, int(value), admin_id=admin_id)
            else:
                await message.answer(tr(lang, "adm_models_bad_price", value=value, max=_MAX_PRICE))
                return
            spec = catalog.get(key)
            await message.answer(tr(lang, "adm_models_priced", name=spec.name, model=key,
                                    price=catalog.base_price(key),
                                    start=catalog.from_price(key)))
            return
    except CatalogError:
        await message.answer(tr(lang, "adm_models_unknown", model=rest[0] if rest else ""))
        return
    await message.answer(tr(lang, "adm_models_usage"))


def router() -> Router:
    r = Router(name="admin_models")
    r.message.filter(IsAdmin())
    r.message.register(models_command, Command("models"))
    return r
