"""aiogram routers: what users see. Stubs until the conversation lands."""

from aiogram import Router


def setup_routers() -> Router:
    return Router(name="root")


def build_presenter():
    from bot.presenter import PlainPresenter

    return PlainPresenter()
