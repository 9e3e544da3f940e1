"""Property test: any sequence of money operations keeps balance == Σ ledger >= 0 and matches a
simple in-memory model of what each operation should have done."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from storage.db import create_engine
from storage.errors import DuplicateError, InsufficientBalanceError, UnknownUserError
from migrations.runner import upgrade
from storage.repository import Repository
from tests.integration.storage.conftest import create_pg_database, drop_pg_database

USERS = st.integers(min_value=1, max_value=4)
CHARGES = st.sampled_from(["c0", "c1", "c2", "c3"])
KEYS = st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5"])
FORWARD = [("queued", "generating"), ("queued", "submit_unknown"), ("submit_unknown", "generating"),
           ("generating", "storing"), ("submit_unknown", "storing"), ("storing", "succeeded")]


class MoneyMachine(RuleBasedStateMachine):
    url: str = ""  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(self.url)
        self.repo = Repository(self.engine)
        # Examples share a Postgres database, so each one gets its own id space.
        self.base = uuid.uuid4().int % 10**12 * 10
        self.tag = uuid.uuid4().hex[:8]
        self.balances: dict[int, int] = {}
        self.gens: dict[int, dict] = {}  # id -> {user, cost, status}
        self.keys: dict[tuple[int, str], int] = {}
        self.charges: dict[str, dict] = {}  # charge -> {user, credits, refunded}

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    def uid(self, n: int) -> int:
        return self.base + n

    @rule(n=USERS, bonus=st.integers(0, 80))
    def register(self, n, bonus):
        user, created = self.run(self.repo.register_user(
            self.uid(n), username=f"u{n}", first_name=None, last_name=None, language="en",
            signup_bonus=bonus,
        ))
        assert created == (n not in self.balances)
        if created:
            self.balances[n] = bonus
        assert user.balance == self.balances[n]

    @rule(n=USERS, cost=st.integers(0, 60), key=KEYS)
    def start(self, n, cost, key):
        try:
            result = self.run(self.repo.start_generation(
                user_id=self.uid(n), chat_id=self.uid(n), model_key="m", kind="image", cost=cost,
                options={}, prompt="p", request_key=key,
            ))
        except UnknownUserError:
            assert n not in self.balances
            return
        except InsufficientBalanceError as exc:
            assert (n, key) not in self.keys and self.balances[n] < cost
            assert exc.balance == self.balances[n]
            return
        if (n, key) in self.keys:
            assert not result.created and result.generation.id == self.keys[(n, key)]
            return
        assert result.created and self.balances[n] >= cost
        self.balances[n] -= cost
        self.keys[(n, key)] = result.generation.id
        self.gens[result.generation.id] = {"user": n, "cost": cost, "status": "queued"}

    @precondition(lambda self: self.gens)
    @rule(data=st.data())
    def fail(self, data):
        gen_id = data.draw(st.sampled_from(sorted(self.gens)))
        gen = self.gens[gen_id]
        done = self.run(self.repo.fail_generation(gen_id, error="boom"))
        assert done == (gen["status"] not in ("succeeded", "failed"))
        if done:
            gen["status"] = "failed"
            self.balances[gen["user"]] += gen["cost"]

    @precondition(lambda self: self.gens)
    @rule(data=st.data(), move=st.sampled_from(FORWARD))
    def advance(self, data, move):
        gen_id = data.draw(st.sampled_from(sorted(self.gens)))
        gen = self.gens[gen_id]
        # A move to succeeded records where the storer put the files, as the storer does.
        stored = {"stored_paths": [f"1/image/{gen_id}_0_0.png"]} if move[1] == "succeeded" else {}
        moved = self.run(self.repo.transition(gen_id, from_statuses={move[0]}, to_status=move[1],
                                              **stored))
        assert moved == (gen["status"] == move[0])
        if moved:
            gen["status"] = move[1]

    @rule(n=USERS, charge=CHARGES, credits=st.integers(1, 100))
    def purchase(self, n, charge, credits):
        charge_id = f"{self.tag}-{charge}"
        try:
            done = self.run(self.repo.credit_purchase(
                user_id=self.uid(n), charge_id=charge_id, stars=credits, credits=credits, payload=None
            ))
        except UnknownUserError:
            assert n not in self.balances
            return
        assert done == (charge not in self.charges)
        if done:
            self.charges[charge] = {"user": n, "credits": credits, "refunded": False}
            self.balances[n] += credits

    @rule(charge=CHARGES)
    def reverse(self, charge):
        known = self.charges.get(charge)
        try:
            payment = self.run(self.repo.reverse_purchase(f"{self.tag}-{charge}", admin_id=1))
        except DuplicateError:
            assert known is not None and known["refunded"]
            return
        if known is None:
            assert payment is None
            return
        assert not known["refunded"] and payment.refunded_at is not None
        known["refunded"] = True
        n = known["user"]
        self.balances[n] -= min(known["credits"], self.balances[n])

    @rule(n=USERS, delta=st.integers(-100, 100).filter(bool))
    def adjust(self, n, delta):
        try:
            balance = self.run(self.repo.admin_adjust(self.uid(n), delta, admin_id=1, note="t"))
        except UnknownUserError:
            assert n not in self.balances
            return
        except InsufficientBalanceError:
            assert self.balances[n] + delta < 0
            return
        self.balances[n] += delta
        assert balance == self.balances[n]

    @invariant()
    def books_balance(self):
        assert self.run(self.repo.ledger_check()) == []
        for n, expected in self.balances.items():
            user = self.run(self.repo.get_user(self.uid(n)))
            assert user.balance == expected >= 0


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_money_state_machine_sqlite(tmp_path_factory):
    template = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{template}"))
    workdir = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))

    class SqliteMachine(MoneyMachine):
        def __init__(self) -> None:
            path = workdir / f"{uuid.uuid4().hex}.sqlite3"
            shutil.copy(template, path)
            type(self).url = f"sqlite+aiosqlite:///{path}"
            super().__init__()

    run_state_machine_as_test(
        SqliteMachine, settings=settings(max_examples=30, stateful_step_count=25, **SETTINGS)
    )


@pytest.mark.postgres
def test_money_state_machine_postgres(pg_url):
    async def create():
        url = await create_pg_database(pg_url)
        await upgrade(url)
        return url

    url = asyncio.run(create())
    try:
        class PgMachine(MoneyMachine):
            pass

        PgMachine.url = url
        run_state_machine_as_test(
            PgMachine, settings=settings(max_examples=8, stateful_step_count=15, **SETTINGS)
        )
    finally:
        asyncio.run(drop_pg_database(pg_url, url))
