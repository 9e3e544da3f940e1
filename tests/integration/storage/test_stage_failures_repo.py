"""The repository side of a stage that keeps failing on one row (both databases): a failure is
counted once and only by the lease holder, the admins' mark is taken once, a succeeded row that
could never be delivered is failed and refunded once, and moving on starts a clean count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from storage.models import Stage

from tests.integration.storage.test_lifecycle import _setup, _start

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def _storing(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    await repo.transition(gen.id, from_statuses={"queued"}, to_status="generating", task_id="t")
    await repo.transition(gen.id, from_statuses={"generating"}, to_status="storing",
                          result_urls=["https://kie/0.png"])
    return gen


async def test_a_failure_is_counted_once_and_only_by_the_lease_holder(repo):
    gen = await _storing(repo)
    [row] = await repo.claim(Stage.store, owner="a", lease_seconds=60, limit=5, now=T0)
    retry_at = T0 + timedelta(seconds=10)
    assert not await repo.record_stage_failure(gen.id, owner="b", attempts=1, error="x",
                                               retry_at=retry_at, now=T0)
    # Two racing recorders of the same attempt: one write.
    results = await asyncio.gather(*(
        repo.record_stage_failure(gen.id, owner="a", attempts=row.stage_attempts + 1,
                                  error="PermissionError: [Errno 13]", retry_at=retry_at, now=T0)
        for _ in range(4)))
    assert results.count(True) == 1
    after = await repo.get_generation(gen.id)
    assert (after.stage_attempts, after.stage_error) == (1, "PermissionError: [Errno 13]")
    assert after.next_poll_at == retry_at
    await repo.release(gen.id, owner="a")
    # Not due before retry_at; then claimable again with its count.
    assert await repo.claim(Stage.store, owner="a", lease_seconds=60, limit=5, now=T0) == []
    [again] = await repo.claim(Stage.store, owner="a", lease_seconds=60, limit=5, now=retry_at)
    assert again.stage_attempts == 1


async def test_alerted_once_and_moving_on_resets_the_count(repo):
    gen = await _storing(repo)
    await repo.claim(Stage.store, owner="a", lease_seconds=60, limit=5, now=T0)
    assert await repo.record_stage_failure(gen.id, owner="a", attempts=1, error="e",
                                           retry_at=T0, now=T0)
    marks = await asyncio.gather(*(repo.mark_alerted(gen.id, now=T0) for _ in range(4)))
    assert marks.count(True) == 1
    assert await repo.transition(gen.id, from_statuses={"storing"}, to_status="succeeded",
                                 stored_paths=["1/image/1_0_1.png"], result_urls=["u"])
    row = await repo.get_generation(gen.id)
    assert row.stage_attempts == 0 and row.alerted_at is not None  # told once, ever


async def test_an_undeliverable_success_is_failed_and_refunded_once(repo):
    gen = await _storing(repo)
    await repo.transition(gen.id, from_statuses={"storing"}, to_status="succeeded",
                          stored_paths=["1/image/1_0_1.png"], result_urls=["u"], now=T0)
    results = await asyncio.gather(*(repo.fail_undelivered(gen.id, error="not sent", now=T0)
                                     for _ in range(4)))
    assert results.count(True) == 1
    row = await repo.get_generation(gen.id)
    assert row.status == "failed" and row.stored_paths == ("1/image/1_0_1.png",)
    assert row.completed_at == T0  # when the result was made, kept
    reasons = sorted(e.reason for e in await repo.ledger(1, limit=10) if e.generation_id == gen.id)
    assert reasons == ["refund", "spend"]
    assert await repo.ledger_check() == []
    # A delivered success is never taken back.
    other = (await _start(repo, key="k2")).generation
    await repo.transition(other.id, from_statuses={"queued"}, to_status="generating", task_id="t2")
    await repo.transition(other.id, from_statuses={"generating"}, to_status="storing",
                          result_urls=["https://kie/1.png"])
    await repo.transition(other.id, from_statuses={"storing"}, to_status="succeeded",
                          stored_paths=["1/image/2_0_1.png"], result_urls=["u"])
    assert await repo.mark_delivered(other.id)
    assert not await repo.fail_undelivered(other.id, error="late")
    assert (await repo.get_generation(other.id)).status == "succeeded"
