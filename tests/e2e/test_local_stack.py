"""LocalStack's own promises, which every end-to-end test leans on: settle() returns only once
the bot has handled what it was sent, and start_process() reports a child that never got ready."""

from __future__ import annotations

import pytest

from testkit.stack import LocalStack
from tests.conftest import free_port


@pytest.mark.parametrize("webhook", [True, False], ids=["webhook", "polling"])
async def test_settle_returns_once_the_bot_has_handled_and_answered(tmp_path, webhook):
    async with LocalStack(tmp_path, webhook=webhook) as stack:
        ann = stack.telegram.user(5001, first_name="Ann")
        for _ in range(3):
            await ann.send_command("/help")
        await stack.settle()  # no wait on the transcript: settle alone must be enough
        assert len([e for e in ann.bot_messages if not e.edited]) >= 3
        assert not stack.telegram.updates.pending and not stack.telegram.calls_in_progress


async def test_start_process_reports_a_child_that_exits_before_it_is_ready(tmp_path):
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    async with LocalStack(tmp_path, in_process=False, database_url=nowhere) as stack:
        with pytest.raises(RuntimeError, match="exited with 3 before it was ready") as failure:
            await stack.start_process()
        assert "database error" in str(failure.value)  # the log's tail says why
        assert stack.process is None


async def test_a_port_taken_after_it_was_probed_moves_the_app_to_a_fresh_one(tmp_path):
    import socket

    stack = LocalStack(tmp_path, webhook=True)
    probed = stack.port
    with socket.socket() as taken:  # another worker got there first
        taken.bind(("127.0.0.1", probed))
        taken.listen()
        async with stack:
            assert stack.port != probed and stack.app is not None
            assert stack.settings.public_base_url.endswith(f":{stack.port}")
