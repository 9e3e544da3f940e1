"""aiogram routers: what users see. `setup_routers()` assembles one Router per feature;
`build_presenter()` gives the pipeline its ru/en texts and buttons.

Each feature module has module-level handler functions and a `router()` that registers them on a
fresh Router: an aiogram Router can be attached to only one parent, and tests build several
dispatchers in one process. Handlers receive the dispatcher's services by parameter name
(kiebot/app.py build_dispatcher) and `user`, `lang`, `user_created` from UserMiddleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, TelegramObject

from bot.config import Settings
from bot.services.followups import FollowupOffers

from handlers import (
    admin,
    admin_models,
    admin_templates,
    balance,
    broadcast,
    errors,
    fallback,
    followups,
    help,
    lang,
    library,
    middlewares,
    payments,
    prompt_helper,
    referrals,
    results,
    selftest,
    start,
    templates,
)
from handlers.menu import generate, models, options, prompt
from handlers.middlewares import (
    BanMiddleware,
    HandlerContextMiddleware,
    UserMiddleware,
    install_reply_retry,
)
from handlers.presenter import ConversationPresenter
from handlers.texts import tr
from kie_client.catalog import Catalog
from handlers.filters import Magic

log = logging.getLogger(__name__)

COMMANDS = ("start", "templates", "balance", "library", "lang", "help", "paysupport", "terms",
            "privacy", "ref", "promo")
ADMIN_COMMANDS = ("credit", "user", "stats", "refund", "ledgercheck", "selftest", "models", "ban",
                  "unban", "promo_new", "promos", "promo_off", "broadcast")


def bot_commands(lang: str) -> list[BotCommand]:
    return [BotCommand(command=c, description=tr(lang, f"cmd_{c}")) for c in COMMANDS]


def admin_bot_commands(lang: str) -> list[BotCommand]:
    """An admin's menu: everyone's commands, then the admin ones."""
    return bot_commands(lang) + [BotCommand(command=c, description=tr(lang, f"cmd_{c}"))
                                 for c in ADMIN_COMMANDS]


async def on_startup(bot: Bot, settings: Settings) -> None:
    """Command menus in Russian (ru clients) and English (everyone else), and in each admin's
    own chat a menu with the admin commands too (scoped to that chat, so no one else sees
    them); the bot's own name fetched once (getMe, cached by aiogram) for invoice titles;
    reply retry on 429."""
    install_reply_retry(bot)
    await bot.me()
    await bot.set_my_commands(bot_commands("en"))
    await bot.set_my_commands(bot_commands("ru"), language_code="ru")
    for admin_id in settings.admin_ids:
        scope = BotCommandScopeChat(chat_id=admin_id)
        try:
            await bot.set_my_commands(admin_bot_commands("en"), scope=scope)
            await bot.set_my_commands(admin_bot_commands("ru"), scope=scope, language_code="ru")
        except TelegramAPIError as exc:  # an admin who never opened the bot: "chat not found"
            log.warning("admin command menu not set for %s: %s", admin_id, type(exc).__name__)


class CatalogRefresh(BaseMiddleware):
    """Admins' /models changes (another process may have made them) reach this process's
    catalog before a handler prices or lists anything: ModelAdmin re-reads them every few
    seconds at most."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        models = data.get("models")
        if models is not None:
            await models.refresh()
        return await handler(event, data)


class PrivateChatsOnly(BaseMiddleware):
    """Outer middleware placed before registration: a message or button from a group or channel
    is dropped unseen, so group members are never registered (nor given the signup bonus)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat = data.get("event_chat")
        if chat is not None and chat.type != "private":
            return UNHANDLED
        return await handler(event, data)


def setup_routers() -> Router:
    root = Router(name="handlers")
    # A private-chat product: in groups a stray message must not become a prompt.
    root.message.filter(Magic(F.chat.type == "private"))
    for observer in (root.message, root.callback_query):
        observer.outer_middleware(PrivateChatsOnly())  # before UserMiddleware registers anyone
    middleware = UserMiddleware()
    root.message.outer_middleware(middleware)
    root.callback_query.outer_middleware(middleware)
    root.pre_checkout_query.outer_middleware(middleware)
    for observer in (root.message, root.callback_query, root.pre_checkout_query):
        observer.outer_middleware(BanMiddleware())  # after registration, before any handler
    for observer in (root.message, root.callback_query, root.pre_checkout_query):
        observer.outer_middleware(HandlerContextMiddleware())
    for observer in (root.message, root.callback_query):
        observer.outer_middleware(CatalogRefresh())
    root.startup.register(on_startup)
    # Order matters: commands before free text, the draft's text steps before the fallback.
    root.include_routers(
        errors.router(),
        middlewares.membership_router(),
        referrals.router(),  # before start: /start ref_… and promo_… links
        start.router(),
        help.router(),
        lang.router(),
        balance.router(),
        payments.router(),
        library.router(),
        admin.router(),
        broadcast.router(),
        admin_models.router(),
        admin_templates.router(),  # /templates <subcommand>; before the gallery's /templates
        templates.router(),  # its photo step before the draft's (menu/prompt)
        selftest.router(),
        models.router(),
        options.router(),
        generate.router(),
        results.router(),
        prompt_helper.router(),
        followups.router(),
        prompt.router(),
        fallback.router(),
    )
    return root


def build_presenter(catalog: Catalog | None = None) -> ConversationPresenter:
    if catalog is None:
        catalog = Catalog()
    return ConversationPresenter({m.key: m.name for m in catalog.models()},
                                 followups=FollowupOffers(catalog))
