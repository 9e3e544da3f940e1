"""Generation lifecycle on both databases: start/charge, transitions, fail/cancel, leases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage.errors import InFlightLimitError, InsufficientBalanceError, InvalidFieldError
from storage.models import GenerationStatus, Stage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def _setup(repo, balance=100, user_id=1):
    await repo.register_user(
        user_id, username=None, first_name="U", last_name=None, language="en", signup_bonus=balance
    )


async def _start(repo, key="k1", cost=10, user_id=1, **kw):
    kw.setdefault("options", {"aspect_ratio": "1:1"})
    kw.setdefault("prompt", "a cat")
    return await repo.start_generation(
        user_id=user_id, chat_id=user_id, model_key="seedream_45_t2i", kind="image", cost=cost,
        request_key=key, **kw,
    )


async def test_start_charges_once_per_request_key(repo):
    await _setup(repo)
    deadline = T0 + timedelta(minutes=30)
    first = await _start(repo, deadline_at=deadline)
    again = await _start(repo)
    assert first.created and not again.created
    assert again.generation.id == first.generation.id
    gen = first.generation
    assert gen.status is GenerationStatus.queued and gen.status == "queued"
    assert gen.options == {"aspect_ratio": "1:1"} and gen.result_urls == []
    assert gen.prompt == "a cat" and gen.stored_paths == ()
    assert gen.deadline_at == deadline and gen.created_at.tzinfo is not None
    assert (await repo.get_user(1)).balance == 90
    assert [(e.reason, e.delta, e.generation_id) for e in await repo.ledger(1, limit=1)] == [
        ("spend", -10, gen.id)
    ]


async def test_start_refuses_when_balance_is_short_and_writes_nothing(repo):
    await _setup(repo, balance=5)
    with pytest.raises(InsufficientBalanceError) as info:
        await _start(repo, cost=8)
    assert (info.value.balance, info.value.cost) == (5, 8)
    assert await repo.count_in_flight(1) == 0
    assert (await repo.get_user(1)).balance == 5 and len(await repo.ledger(1)) == 1


async def test_zero_cost_writes_no_spend_row(repo):
    await _setup(repo, balance=0)
    result = await _start(repo, cost=0)
    assert result.created and await repo.ledger(1) == []
    assert await repo.fail_generation(result.generation.id, error="x")
    assert await repo.ledger(1) == [] and await repo.ledger_check() == []


async def test_in_flight_limit(repo):
    await _setup(repo)
    await _start(repo, key="a", max_in_flight=2)
    await _start(repo, key="b", max_in_flight=2)
    with pytest.raises(InFlightLimitError) as info:
        await _start(repo, key="c", max_in_flight=2)
    assert info.value.limit == 2
    assert (await repo.get_user(1)).balance == 80
    # the same key as an existing row is not a new generation, so the limit does not apply
    assert not (await _start(repo, key="a", max_in_flight=2)).created


async def test_transitions_are_forward_only(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    assert not await repo.transition(gen.id, from_statuses={"queued"}, to_status="succeeded",
                                     stored_paths=["1/image/1_0_0.png"])
    assert not await repo.transition(gen.id, from_statuses={"generating"}, to_status="storing")
    assert await repo.transition(
        gen.id, from_statuses={"queued"}, to_status="generating", task_id="t-1", submitted_at=T0,
        kie_state="waiting", next_poll_at=T0,
    )
    # the same move again is a stale compare-and-set
    assert not await repo.transition(gen.id, from_statuses={"queued"}, to_status="generating")
    assert not await repo.transition(gen.id, from_statuses={"generating"}, to_status="queued")
    assert await repo.transition(gen.id, from_statuses={"generating", "submit_unknown"}, to_status="storing")
    assert await repo.transition(
        gen.id, from_statuses={GenerationStatus.storing}, to_status=GenerationStatus.succeeded,
        result_urls=["https://x/0.png", "https://x/1.png"], preview_url="https://x/0.png",
        stored_paths=["1/image/7_0_5.png", "1/image/7_1_5.png"],
    )
    done = await repo.get_generation_by_task("t-1")
    assert done.status is GenerationStatus.succeeded
    assert done.result_urls == ["https://x/0.png", "https://x/1.png"]
    assert done.stored_paths == ("1/image/7_0_5.png", "1/image/7_1_5.png")
    assert done.submitted_at == T0 and done.completed_at is not None
    assert not await repo.fail_generation(gen.id, error="late")
    assert not await repo.transition(gen.id, from_statuses={"succeeded"}, to_status="failed")
    assert (await repo.get_user(1)).balance == 90


async def test_submit_unknown_path(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    assert await repo.transition(gen.id, from_statuses={"queued"}, to_status="submit_unknown")
    assert await repo.transition(gen.id, from_statuses={"submit_unknown"}, to_status="storing", task_id="t9")
    assert (await repo.get_generation(gen.id)).task_id == "t9"


async def test_transition_rejects_bad_names(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    with pytest.raises(InvalidFieldError):
        await repo.transition(gen.id, from_statuses={"queued"}, to_status="done")
    with pytest.raises(InvalidFieldError):
        await repo.transition(gen.id, from_statuses={"queued"}, to_status="generating", cost=0)
    with pytest.raises(InvalidFieldError):
        await repo.update_fields(gen.id, status="succeeded")
    assert (await repo.get_generation(gen.id)).status == "queued"


async def test_fail_refunds_once_and_transition_to_failed_refunds(repo):
    await _setup(repo)
    a = (await _start(repo, key="a")).generation
    b = (await _start(repo, key="b")).generation
    assert await repo.fail_generation(a.id, error="KIE said no", fail_code="500")
    assert not await repo.fail_generation(a.id, error="again")
    assert await repo.transition(b.id, from_statuses={"queued"}, to_status="failed", error="expired")
    failed = await repo.get_generation(a.id)
    assert (failed.status, failed.error, failed.fail_code) == ("failed", "KIE said no", "500")
    assert (await repo.get_user(1)).balance == 100
    reasons = sorted(e.reason for e in await repo.ledger(1, limit=50))
    assert reasons == ["refund", "refund", "signup_bonus", "spend", "spend"]
    assert await repo.ledger_check() == []
    assert not await repo.fail_generation(12345, error="unknown id")


async def test_cancel_only_while_queued_and_by_owner(repo):
    await _setup(repo)
    await _setup(repo, user_id=2)
    gen = (await _start(repo)).generation
    assert not await repo.cancel_generation(gen.id, user_id=2)
    assert await repo.cancel_generation(gen.id, user_id=1)
    assert (await repo.get_generation(gen.id)).error == "cancelled"
    other = (await _start(repo, key="b")).generation
    await repo.transition(other.id, from_statuses={"queued"}, to_status="generating")
    assert not await repo.cancel_generation(other.id, user_id=1)
    assert (await repo.get_user(1)).balance == 90


async def test_update_fields_and_delivery_once(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    assert await repo.update_fields(gen.id, kie_state="queuing", poll_attempts=3, progress_message_id=77,
                                    callback_received_at=T0)
    row = await repo.get_generation(gen.id)
    assert (row.kie_state, row.poll_attempts, row.progress_message_id) == ("queuing", 3, 77)
    assert row.callback_received_at == T0
    assert not await repo.update_fields(999, kie_state="x")
    assert not await repo.mark_delivered(gen.id)  # not final yet
    await repo.fail_generation(gen.id, error="x")
    assert await repo.mark_delivered(gen.id)
    assert not await repo.mark_delivered(gen.id)


async def test_library_paging_newest_first_and_queue(repo):
    await _setup(repo)
    ids = []
    for i in range(5):
        gen = (await _start(repo, key=f"k{i}", cost=1, now=T0 + timedelta(minutes=i))).generation
        ids.append(gen.id)
    assert [await repo.queue_position(i) for i in ids] == [1, 2, 3, 4, 5]
    for gen_id in ids[:3]:
        await repo.transition(gen_id, from_statuses={"queued"}, to_status="generating")
        await repo.transition(gen_id, from_statuses={"generating"}, to_status="storing")
        await repo.transition(gen_id, from_statuses={"storing"}, to_status="succeeded",
                              stored_paths=[f"1/image/{gen_id}_0_0.png"])
    assert await repo.queue_position(ids[3]) == 1 and await repo.queue_position(ids[0]) == 0
    assert await repo.count_library(1) == 3 and await repo.count_in_flight(1) == 2
    page1 = await repo.list_library(1, limit=2, offset=0)
    page2 = await repo.list_library(1, limit=2, offset=2)
    assert [g.id for g in page1 + page2] == [ids[2], ids[1], ids[0]]
    everything = await repo.list_library(1, limit=10, offset=0, statuses=GenerationStatus)
    assert len(everything) == 5
    assert await repo.queue_depths() == {"queued": 2, "generating": 0, "submit_unknown": 0, "storing": 0}
    assert all(type(status) is GenerationStatus for status in await repo.queue_depths())


async def test_claim_stages_and_leases(repo):
    await _setup(repo)
    gens = [(await _start(repo, key=f"k{i}", cost=1, deadline_at=T0)).generation for i in range(3)]
    first = await repo.claim(Stage.submit, owner="w1", lease_seconds=30, limit=2, now=T0)
    assert [g.id for g in first] == [gens[0].id, gens[1].id]
    assert all(g.lease_owner == "w1" and g.lease_until == T0 + timedelta(seconds=30) for g in first)
    second = await repo.claim("submit", owner="w2", lease_seconds=30, limit=5, now=T0)
    assert [g.id for g in second] == [gens[2].id]
    # expired leases can be taken over
    later = T0 + timedelta(seconds=31)
    assert len(await repo.claim("submit", owner="w3", lease_seconds=30, limit=5, now=later)) == 3
    assert await repo.release(gens[0].id, owner="w3")
    assert not await repo.release(gens[0].id, owner="w3")
    # poll: only rows whose next_poll_at has come
    await repo.transition(gens[0].id, from_statuses={"queued"}, to_status="generating", next_poll_at=later)
    assert await repo.claim("poll", owner="p", lease_seconds=5, limit=5, now=T0) == []
    assert [g.id for g in await repo.claim("poll", owner="p", lease_seconds=5, limit=5, now=later)] == [gens[0].id]
    # expire: non-final rows past their deadline whose lease is free
    expired = await repo.claim("expire", owner="e", lease_seconds=5, limit=5, now=later + timedelta(minutes=1))
    assert {g.id for g in expired} == {g.id for g in gens}
    # deliver: final, undelivered, user not blocked
    await repo.fail_generation(gens[1].id, error="x")
    await repo.set_blocked(1, True)
    assert await repo.claim("deliver", owner="d", lease_seconds=5, limit=5, now=later) == []
    await repo.set_blocked(1, False)
    assert [g.id for g in await repo.claim("deliver", owner="d", lease_seconds=5, limit=5, now=later)] == [gens[1].id]
    await repo.mark_delivered(gens[1].id)
    assert await repo.claim("deliver", owner="d", lease_seconds=5, limit=5, now=later + timedelta(hours=1)) == []
    with pytest.raises(InvalidFieldError):
        await repo.claim("bake", owner="d", lease_seconds=5, limit=5)


async def test_renew_lease_keeps_the_row_and_says_when_it_was_taken(repo):
    await _setup(repo)
    g = (await _start(repo, key="lease")).generation
    (claimed,) = await repo.claim("submit", owner="a", lease_seconds=10, limit=5, now=T0)
    # Renewed before it runs out: another claimer finds nothing after the first lease's end.
    assert await repo.renew_lease(g.id, owner="a", lease_seconds=10, now=T0 + timedelta(seconds=8))
    assert await repo.claim("submit", owner="b", lease_seconds=10, limit=5,
                            now=T0 + timedelta(seconds=12)) == []
    assert (await repo.get_generation(g.id)).lease_until == T0 + timedelta(seconds=18)
    # Ran out but nobody took it: still a's.
    assert await repo.renew_lease(g.id, owner="a", lease_seconds=10, now=T0 + timedelta(seconds=30))
    # Taken over after running out: a's renewal fails and writes nothing.
    later = T0 + timedelta(seconds=41)
    assert [r.id for r in await repo.claim("submit", owner="b", lease_seconds=10, limit=5,
                                           now=later)] == [g.id]
    assert not await repo.renew_lease(g.id, owner="a", lease_seconds=100, now=later)
    row = await repo.get_generation(g.id)
    assert row.lease_owner == "b" and row.lease_until == later + timedelta(seconds=10)
    # A transition drops the lease: nothing left to renew.
    await repo.transition(g.id, from_statuses={"queued"}, to_status="generating")
    assert not await repo.renew_lease(g.id, owner="b", lease_seconds=10, now=later)
    with pytest.raises(InvalidFieldError):
        await repo.renew_lease(g.id, owner="b", lease_seconds=0)


async def test_progress_view_reads_rows_languages_and_positions_in_one_call(repo):
    await _setup(repo)
    gens = [(await _start(repo, key=f"pv{i}", cost=1)).generation for i in range(4)]
    await repo.transition(gens[1].id, from_statuses={"queued"}, to_status="generating")
    view = await repo.progress_view([gens[3].id, gens[1].id, gens[2].id, 999_999])
    assert [(g.id, g.status, lang, pos) for g, lang, pos in view] == [
        (gens[1].id, GenerationStatus.generating, "en", 0),
        (gens[2].id, GenerationStatus.queued, "en", 2),
        (gens[3].id, GenerationStatus.queued, "en", 3),
    ]
    assert [pos for _, _, pos in view] == [await repo.queue_position(g.id) for g, _, _ in view]
    assert view[0][0] == await repo.get_generation(gens[1].id)
    assert await repo.progress_view([]) == []


async def test_concurrent_claimers_never_share_a_row(repo):
    await _setup(repo, balance=1000)
    for i in range(60):
        await _start(repo, key=f"k{i}", cost=1)

    async def worker(name):
        got = []
        while batch := await repo.claim("submit", owner=name, lease_seconds=60, limit=3, now=T0):
            got.extend(g.id for g in batch)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
    claimed = [gid for r in results for gid in r]
    assert len(claimed) == 60 and len(set(claimed)) == 60


async def test_deferred_rows_wait_and_go_to_the_back_of_every_stage(repo):
    """next_poll_at is 'not before' for submit/store/deliver: a row whose work was deferred can
    neither be re-claimed at once (a stage spinning on it) nor keep fresher rows waiting."""
    await _setup(repo)
    gens = [(await _start(repo, key=f"d{i}", cost=1)).generation for i in range(3)]
    later = T0 + timedelta(seconds=20)
    # The oldest row was deferred: the next pass takes the others first, and not it.
    assert await repo.update_fields(gens[0].id, next_poll_at=later)
    picked = await repo.claim("submit", owner="s", lease_seconds=1, limit=1, now=T0)
    assert [g.id for g in picked] == [gens[1].id]
    assert gens[0].id not in [g.id for g in await repo.claim(
        "submit", owner="s", lease_seconds=1, limit=5, now=T0 + timedelta(seconds=2))]
    assert gens[0].id in [g.id for g in await repo.claim(
        "submit", owner="s", lease_seconds=1, limit=5, now=later)]
    # The same rule for storing and for delivery.
    for g in gens[:2]:
        await repo.transition(g.id, from_statuses={"queued"}, to_status="generating", task_id=f"t{g.id}")
        await repo.transition(g.id, from_statuses={"generating"}, to_status="storing")
    await repo.update_fields(gens[0].id, next_poll_at=later + timedelta(seconds=60))
    now = later + timedelta(seconds=5)
    assert [g.id for g in await repo.claim("store", owner="st", lease_seconds=1, limit=5, now=now)] == [gens[1].id]
    await repo.fail_generation(gens[2].id, error="x")
    await repo.update_fields(gens[2].id, next_poll_at=now + timedelta(seconds=60))
    assert await repo.claim("deliver", owner="dl", lease_seconds=1, limit=5, now=now) == []
    assert [g.id for g in await repo.claim(
        "deliver", owner="dl", lease_seconds=1, limit=5, now=now + timedelta(seconds=61))] == [gens[2].id]


async def test_cancel_and_the_submit_mark_exclude_each_other(repo):
    """Whichever comes first wins: a cancelled row is never marked for createTask, and a
    marked row (createTask possibly in flight) can no longer be cancelled and refunded."""
    await _setup(repo)
    first = (await _start(repo, key="c1", cost=5)).generation
    assert await repo.cancel_generation(first.id, user_id=1)
    assert not await repo.mark_submitting(first.id, kie_state="creating")

    second = (await _start(repo, key="c2", cost=5)).generation
    assert await repo.mark_submitting(second.id, kie_state="creating")
    assert not await repo.mark_submitting(second.id, kie_state="creating")
    assert not await repo.cancel_generation(second.id, user_id=1)
    row = await repo.get_generation(second.id)
    assert row.status == "queued" and row.kie_state == "creating"
    assert (await repo.get_user(1)).balance == 100 - 5  # first refunded, second still charged


async def test_prompt_is_a_column_and_never_rides_in_options(repo):
    await _setup(repo)
    gen = (await _start(repo, prompt="a fox in the snow", options={"aspect_ratio": "16:9"})).generation
    stored = await repo.get_generation(gen.id)
    assert stored.prompt == "a fox in the snow" and "prompt" not in stored.options
    with pytest.raises(InvalidFieldError, match="prompt"):
        await _start(repo, key="k2", options={"prompt": "old style"})
    with pytest.raises(InvalidFieldError):
        await _start(repo, key="k3", prompt=None)
    assert await repo.count_in_flight(1) == 1


async def test_succeeded_needs_the_stored_paths_and_they_must_be_safe(repo):
    await _setup(repo)
    gen = (await _start(repo)).generation
    await repo.transition(gen.id, from_statuses={"queued"}, to_status="generating", task_id="t")
    await repo.transition(gen.id, from_statuses={"generating"}, to_status="storing",
                          result_urls=["https://kie/0.png"])
    for bad in (None, [], "1/image/a.png", ["../etc/passwd"], ["/abs.png"]):
        kwargs = {} if bad is None else {"stored_paths": bad}
        with pytest.raises(InvalidFieldError):
            await repo.transition(gen.id, from_statuses={"storing"}, to_status="succeeded",
                                  result_urls=["https://ours/0.png"], **kwargs)
    row = await repo.get_generation(gen.id)
    assert row.status == "storing" and row.stored_paths == () and row.result_urls == ["https://kie/0.png"]


async def test_statuses_and_stages_accept_enum_members_and_plain_strings(repo):
    await _setup(repo)
    gen = (await _start(repo, cost=1)).generation
    assert [g.id for g in await repo.claim("submit", owner="a", lease_seconds=1, limit=5, now=T0)] == [gen.id]
    assert await repo.claim(Stage.submit, owner="b", lease_seconds=1, limit=5, now=T0) == []
    assert await repo.transition(gen.id, from_statuses=["queued"], to_status=GenerationStatus.generating)
    assert await repo.list_library(1, limit=5, statuses=[GenerationStatus.generating, "queued"])
    with pytest.raises(InvalidFieldError):
        await repo.list_library(1, limit=5, statuses=["finished"])
    with pytest.raises(InvalidFieldError):
        await repo.transition(gen.id, from_statuses=[["generating"]], to_status="storing")


class _Writes:
    """The writing statements an engine runs (BEGIN/COMMIT and reads are not writes)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        from storage.db import statement_engines

        self.statements: list[tuple[str, int]] = []
        for sync_engine in statement_engines(engine):
            event.listen(sync_engine, "after_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.statements.append((statement.split()[0].upper(), context.rowcount))

    def take(self) -> list[tuple[str, int]]:
        """(statement, rows it changed) since the last take."""
        taken, self.statements = self.statements, []
        return taken


async def test_a_callback_is_recorded_in_one_conditional_update(repo, engine):
    from storage.repository import CALLBACK_RESULTS, CallbackWrite

    await _setup(repo)
    g = (await _start(repo)).generation
    assert await repo.transition(g.id, from_statuses={GenerationStatus.queued},
                                 to_status=GenerationStatus.generating, task_id="t1")
    other = (await _start(repo, key="k2")).generation
    writes = _Writes(engine)
    now = datetime(2030, 1, 1, tzinfo=UTC)

    # A wake-up (no results): one UPDATE, due for the poller now.
    assert await repo.accept_callback(g.id, task_id="t1", kie_state="generating", now=now) \
        is CallbackWrite.woken
    assert writes.take() == [("UPDATE", 1)]
    row = await repo.get_generation(g.id)
    assert (row.status, row.callback_received_at, row.next_poll_at, row.kie_state) == (
        GenerationStatus.generating, now, now, "generating")

    # The results: one UPDATE moves it to storing with the URLs, lease dropped.
    urls = ["https://tempfile.aiquickdraw.com/r/a.png", "https://tempfile.aiquickdraw.com/r/b.png"]
    assert await repo.claim(Stage.poll, owner="poller", lease_seconds=60, limit=5, now=now)
    writes.take()  # the claim's
    assert await repo.accept_callback(g.id, task_id="t1", kie_state="success", result_urls=urls,
                                      now=now) is CallbackWrite.storing
    assert writes.take() == [("UPDATE", 1)]
    row = await repo.get_generation(g.id)
    assert (row.status, row.result_urls, row.kie_state, row.completed_at, row.lease_owner,
            row.next_poll_at) == (GenerationStatus.storing, urls, CALLBACK_RESULTS, now, None, None)

    # Again (KIE retries): nothing written, nothing to do.
    assert await repo.accept_callback(g.id, task_id="t1", kie_state="success", result_urls=urls) \
        is CallbackWrite.nothing_to_do
    # Another task's callback, an unknown generation: refused without a write.
    assert await repo.accept_callback(g.id, task_id="t9", kie_state="success", result_urls=urls) \
        is CallbackWrite.mismatch
    assert await repo.accept_callback(10**9, task_id="t1", kie_state="success") \
        is CallbackWrite.unknown
    assert all(rows == 0 for _, rows in writes.take())  # tried, matched nothing
    assert (await repo.get_generation(g.id)).result_urls == urls

    # A queued row that never learned its task (the create answer was lost) records it.
    assert await repo.accept_callback(other.id, task_id="t2", kie_state="success",
                                      result_urls=urls, now=now) is CallbackWrite.woken
    row = await repo.get_generation(other.id)
    assert (row.status, row.task_id, row.submitted_at) == (GenerationStatus.generating, "t2", now)
    assert writes.take() == [("UPDATE", 1)]


async def test_concurrent_callbacks_move_a_row_once(repo):
    from storage.repository import CallbackWrite

    await _setup(repo)
    g = (await _start(repo)).generation
    await repo.transition(g.id, from_statuses={GenerationStatus.queued},
                          to_status=GenerationStatus.generating, task_id="t1")
    outcomes = await asyncio.gather(*(
        repo.accept_callback(g.id, task_id="t1", kie_state="success",
                             result_urls=["https://tempfile.aiquickdraw.com/r/a.png"])
        for _ in range(10)
    ))
    assert outcomes.count(CallbackWrite.storing) == 1
    assert outcomes.count(CallbackWrite.nothing_to_do) == 9


async def test_callbacks_arriving_together_are_written_in_one_transaction(repo, engine):
    """Group commit: one read of the rows, then one executemany per kind of write, whatever
    the number of callbacks; repeats inside the batch see the first one's effect."""
    from storage.repository import CallbackNote, CallbackWrite

    await _setup(repo, balance=1000)
    rows = [(await _start(repo, key=f"k{i}")).generation for i in range(6)]
    for i, g in enumerate(rows[:5]):
        await repo.transition(g.id, from_statuses={GenerationStatus.queued},
                              to_status=GenerationStatus.generating, task_id=f"t{i}")
    url = "https://tempfile.aiquickdraw.com/r/{}.png"
    notes = [
        CallbackNote(rows[0].id, "t0", "success", (url.format(0),)),
        CallbackNote(rows[1].id, "t1", "success", (url.format(1),)),
        CallbackNote(rows[0].id, "t0", "success", (url.format(0),)),  # KIE's retry, same batch
        CallbackNote(rows[2].id, "t2", "fail"),
        CallbackNote(rows[3].id, "other", "success", (url.format(3),)),
        CallbackNote(rows[5].id, "t5", "generating"),  # queued, create answer lost
        CallbackNote(10**9, "t9", "success", (url.format(9),)),
    ]
    writes = _Writes(engine)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert await repo.accept_callbacks(notes, now=now) == [
        CallbackWrite.storing, CallbackWrite.storing, CallbackWrite.nothing_to_do,
        CallbackWrite.woken, CallbackWrite.mismatch, CallbackWrite.woken, CallbackWrite.unknown,
    ]
    # One UPDATE (executemany) moving two rows to storing, one waking two (their rows below).
    assert [statement for statement, _ in writes.take()] == ["UPDATE", "UPDATE"]
    got = {g.id: await repo.get_generation(g.id) for g in rows}
    assert [got[g.id].status for g in rows] == [
        GenerationStatus.storing, GenerationStatus.storing, GenerationStatus.generating,
        GenerationStatus.generating, GenerationStatus.generating, GenerationStatus.generating]
    assert got[rows[1].id].result_urls == [url.format(1)]
    assert (got[rows[2].id].next_poll_at, got[rows[2].id].kie_state) == (now, "fail")
    assert got[rows[3].id].callback_received_at is None  # another task's: untouched
    assert (got[rows[5].id].task_id, got[rows[5].id].next_poll_at) == ("t5", now)
