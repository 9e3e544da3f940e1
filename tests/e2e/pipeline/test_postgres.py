"""The same pipeline on Postgres: happy path and concurrent duplicate callbacks."""

from __future__ import annotations

import pytest

from tests.e2e.pipeline.helpers import BONUS, ledger_reasons, make_user, media_messages, plain_stack, start, wait_final

pytestmark = pytest.mark.postgres


async def test_happy_path_on_postgres(tmp_path, pg_database):
    async with plain_stack(tmp_path, database_url=pg_database) as stack:
        tg = await make_user(stack)
        started = await start(stack, model_key="kling_26_t2v", prompt="rain on a window")
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert [m.kind for m in media_messages(tg)] == ["video"]
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -started.generation.cost)]
        assert await stack.app.repository.ledger_check() == []


async def test_concurrent_callbacks_on_postgres_deliver_once(tmp_path, pg_database):
    async with plain_stack(tmp_path, database_url=pg_database) as stack:
        tg = await make_user(stack)
        stack.kie.faults.callback_copies = 3
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        await stack.settle()  # every copy handled, more passes run: still one delivery
        assert g.status == "succeeded"
        assert len(media_messages(tg)) == 1
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -8)]
