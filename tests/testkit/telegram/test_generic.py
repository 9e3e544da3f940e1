"""Every spec method the fake does not model still answers something aiogram 3.31 can parse."""

from __future__ import annotations

import inspect

import aiogram.methods
import pytest
from pydantic import TypeAdapter

from testkit.telegram import FakeTelegram, Spec
from testkit.telegram.api_generic import plausible_result
from testkit.telegram.server import HANDLERS

SPEC = Spec()
UNMODELLED = sorted(
    (cls.__api_method__, cls)
    for _, cls in inspect.getmembers(aiogram.methods, inspect.isclass)
    if getattr(cls, "__api_method__", None) in SPEC.methods and cls.__api_method__ not in HANDLERS
)


def test_spec_copy_is_the_reference_spec() -> None:
    assert SPEC.version == "Bot API 10.1" and len(SPEC.methods) == 180
    assert len(UNMODELLED) > 100


@pytest.mark.parametrize("api, cls", UNMODELLED, ids=[a for a, _ in UNMODELLED])
def test_plausible_result_parses_with_aiogram(api: str, cls: type) -> None:
    fake = FakeTelegram(spec=SPEC)
    fake.user(42)
    result = plausible_result(fake, api, {"chat_id": 42})
    TypeAdapter(cls.__returning__).validate_python(result)
