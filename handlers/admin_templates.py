"""`/templates <subcommand>` (ADMIN_IDS only): the photo templates at runtime. Stored in the
database (bot.services.templates.TemplateService), so every process follows within seconds and a
restart keeps it; orders already charged keep their price. `/templates` alone opens the gallery
for admins too (handlers/templates.py).

    /templates list                        every template: on/off, key, name, ⭐, model, photos
    /templates off <key> · on <key>        hide it (old Use buttons are refused) / offer it again
    /templates price <key> <N|reset>       ⭐ per order; reset: the file's price or the model's
    /templates name <key> <en|ru> <text>   the card's name in that language
    /templates desc <key> <en|ru> <text>   the card's description
    /templates prompt <key> <text>         the prompt; placeholders {subject} {photo1} {photo2}
    /templates ratio <key> <ratio|reset>   a value of the model's aspect ratio
    /templates add <key> <model> <1|2> <prompt>   a new template, off until switched on

Every change is checked like the data file (bot.templates.check_template) before it is stored.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.services.templates import TemplateService, TemplateTakenError, UnknownTemplateError
from bot.templates import MAX_PRICE, Template, TemplateError
from handlers.admin import IsAdmin
from handlers.texts import tr

_CHUNK = 3500  # characters per message, below Telegram's 4096


def listing(lang: str, templates: TemplateService) -> list[str]:
    chunks, current = [], tr(lang, "tpl_adm_title")
    for t in templates.all():
        on = t.enabled and templates.catalog.sellable(t.model)
        line = tr(lang, "tpl_adm_line", mark="✅" if on else "⛔", tpl=t.key, name=t.title(lang),
                  price=templates.price(t), model=t.model, photos=t.photos,
                  source=tr(lang, "tpl_adm_src_admin") if t.admin_made else "")
        if len(current) + len(line) + 1 > _CHUNK:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    chunks.append(current + "\n\n" + usage(lang))
    return chunks


def usage(lang: str) -> str:
    return tr(lang, "tpl_adm_usage", placeholders="{subject}, {photo1}, {photo2}")


async def _run(action: str, key: str, rest: str, lang: str, templates: TemplateService,
               admin_id: int) -> str:
    """One subcommand; returns the answer. Raises UnknownTemplateError, TemplateError."""
    words = rest.split(maxsplit=1)
    if action in ("on", "off") and not rest:
        t = await templates.set_enabled(key, action == "on", admin_id=admin_id)
        return tr(lang, f"tpl_adm_{action}", tpl=key, name=t.title(lang))
    if action == "price" and len(words) == 1:
        value = words[0]
        if value.lower() == "reset":
            t = await templates.set_price(key, None, admin_id=admin_id)
        elif value.isdigit() and 1 <= int(value) <= MAX_PRICE:
            t = await templates.set_price(key, int(value), admin_id=admin_id)
        else:
            return tr(lang, "tpl_adm_bad_price", value=value, max=MAX_PRICE)
        return tr(lang, "tpl_adm_priced", tpl=key, name=t.title(lang), price=templates.price(t))
    if action in ("name", "desc") and len(words) == 2 and words[0] in ("en", "ru"):
        field = "name" if action == "name" else "description"
        t = await templates.set_text(key, field, words[0], words[1], admin_id=admin_id)
        return _saved(lang, t)
    if action == "prompt" and rest:
        return _saved(lang, await templates.set_prompt(key, rest, admin_id=admin_id))
    if action == "ratio" and len(words) == 1:
        ratio = None if words[0].lower() == "reset" else words[0]
        return _saved(lang, await templates.set_ratio(key, ratio, admin_id=admin_id))
    if action == "add":
        parts = rest.split(maxsplit=2)
        if len(parts) == 3 and parts[1] in ("1", "2"):
            await templates.add(key, model=parts[0], photos=int(parts[1]), prompt=parts[2],
                                admin_id=admin_id)
            return tr(lang, "tpl_adm_added", tpl=key)
    return usage(lang)


def _saved(lang: str, t: Template) -> str:
    return tr(lang, "tpl_adm_saved", tpl=t.key, model=t.model, prompt=t.render_prompt())


async def templates_admin(message: Message, command: CommandObject, lang: str,
                          templates: TemplateService) -> None:
    await templates.refresh(force=True)
    parts = (command.args or "").split(maxsplit=2)
    action = parts[0].lower()
    if action == "list" or len(parts) < 2:
        for chunk in (listing(lang, templates) if action == "list" else [usage(lang)]):
            await message.answer(chunk)
        return
    key, rest = parts[1], (parts[2].strip() if len(parts) > 2 else "")
    try:
        answer = await _run(action, key, rest, lang, templates, message.from_user.id)
    except UnknownTemplateError:
        answer = tr(lang, "tpl_adm_unknown", tpl=key)
    except TemplateTakenError:
        answer = tr(lang, "tpl_adm_taken", tpl=key)
    except TemplateError as exc:
        # "database: key: field: problem" → "field: problem", the part an admin can act on.
        answer = tr(lang, "tpl_adm_invalid", problem=str(exc).split(": ", 2)[-1])
    await message.answer(answer)


def router() -> Router:
    r = Router(name="admin_templates")
    r.message.filter(IsAdmin())
    r.message.register(templates_admin, Command("templates", magic=F.args))
    return r
