"""The router tree: fresh per call, handlers importable at module level."""

from __future__ import annotations

import functools

from aiogram import Dispatcher, Router

import handlers


def _routers(root: Router):
    yield root
    for child in root.sub_routers:
        yield from _routers(child)


def _callbacks(root: Router):
    for router in _routers(root):
        for observer in router.observers.values():
            for handler in observer.handlers:
                callback = handler.callback
                yield callback.func if isinstance(callback, functools.partial) else callback


def test_each_call_builds_a_tree_another_dispatcher_can_take():
    # A Router can have one parent only; two dispatchers in one process need two trees.
    Dispatcher().include_router(handlers.setup_routers())
    Dispatcher().include_router(handlers.setup_routers())


def test_every_handler_is_a_module_level_function():
    callbacks = list(_callbacks(handlers.setup_routers()))
    assert len(callbacks) > 40
    nested = [f"{c.__module__}.{c.__qualname__}" for c in callbacks if "<locals>" in c.__qualname__]
    assert not nested
    for c in callbacks:
        module = __import__(c.__module__, fromlist=["_"])
        assert getattr(module, c.__qualname__) is c
