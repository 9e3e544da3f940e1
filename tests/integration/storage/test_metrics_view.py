"""Repository.metrics_view on both databases, and what /metrics makes of it (bot/metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from storage.models import GenerationStatus as S
from storage.models import Stage

SEEDREAM, KLING = "seedream_45_t2i", "kling_26_t2v"


async def _start(repo, user_id: int, key: str, model: str, cost: int, **kw):
    result = await repo.start_generation(
        user_id=user_id, chat_id=user_id, model_key=model, kind="image", cost=cost,
        options={}, prompt="a secret prompt", request_key=key, **kw)
    return result.generation.id


async def _move(repo, gid: int, *path: S) -> None:
    current = S.queued
    for status in path:
        fields = {"stored_paths": [f"1/image/{gid}_0_1.png"]} if status == S.succeeded else {}
        assert await repo.transition(gid, from_statuses=[current], to_status=status, **fields)
        current = status


async def _populate(repo) -> None:
    for uid in (1, 2):
        await repo.register_user(uid, username=None, first_name="U", last_name=None,
                                 language="en", signup_bonus=100)
    past = datetime.now(UTC) - timedelta(minutes=1)
    await _start(repo, 1, "a", SEEDREAM, 10)                                  # waits for submit
    await _move(repo, await _start(repo, 1, "b", SEEDREAM, 10),
                S.generating, S.storing, S.succeeded)                         # waits for deliver
    failed = await _start(repo, 1, "c", KLING, 40)
    assert await repo.fail_generation(failed, error="KIE failed")             # refunded
    assert await repo.mark_delivered(failed)
    await _move(repo, await _start(repo, 2, "d", SEEDREAM, 10, deadline_at=past),
                S.generating)                                                 # poll, and overdue
    await _move(repo, await _start(repo, 2, "e", KLING, 40), S.generating, S.storing)
    free = await _start(repo, 2, "f", KLING, 0)
    assert await repo.fail_generation(free, error="KIE failed")  # nothing charged: no refund
    await repo.set_blocked(2, True)  # its undelivered failure waits for no deliverer
    assert await repo.credit_purchase(user_id=1, charge_id="c1", stars=50, credits=50, payload=None)
    assert await repo.credit_purchase(user_id=1, charge_id="c2", stars=150, credits=165,
                                      payload=None)
    await repo.reverse_purchase("c1", admin_id=9)
    await repo.admin_adjust(1, 7, admin_id=9)


async def test_metrics_view_counts_every_fact_once(repo):
    await _populate(repo)
    view = await repo.metrics_view()
    assert view["generations"] == {(SEEDREAM, S.queued): 1, (SEEDREAM, S.succeeded): 1,
                                   (SEEDREAM, S.generating): 1, (KLING, S.failed): 2,
                                   (KLING, S.storing): 1}
    assert view["refunded"] == {KLING: 1}
    assert view["stages"] == {Stage.submit: 1, Stage.poll: 1, Stage.store: 1, Stage.deliver: 1,
                              Stage.expire: 1}
    assert view["ledger"] == {"signup_bonus": (2, 200), "spend": (5, -110), "refund": (1, 40),
                              "purchase": (2, 215), "purchase_refund": (1, -50),
                              "admin_adjust": (1, 7)}
    assert (view["payments"], view["stars"], view["payments_refunded"]) == (2, 200, 1)
    users = [await repo.get_user(uid) for uid in (1, 2)]
    assert view["balances"] == sum(u.balance for u in users)
    assert view["balances"] == sum(total for _, total in view["ledger"].values())


async def test_metrics_render_the_database_view_without_personal_labels(repo):
    await _populate(repo)
    metrics = Metrics(repository=repo, db_ttl_s=0, process=False)
    await metrics.collect_db()
    text = metrics.render().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    gen = "kiebot_generations_total"
    assert samples[(gen, (("model", KLING), ("status", "created")))] == 3
    assert samples[(gen, (("model", KLING), ("status", "failed")))] == 2
    assert samples[(gen, (("model", KLING), ("status", "refunded")))] == 1
    assert samples[(gen, (("model", SEEDREAM), ("status", "succeeded")))] == 1
    assert samples[("kiebot_queue_depth", (("stage", "expire"),))] == 1
    assert samples[("kiebot_credits_total", (("kind", "sold"),))] == 215
    assert samples[("kiebot_credits_total", (("kind", "refunded"),))] == 40
    assert samples[("kiebot_credits_total", (("kind", "purchase_refunded"),))] == 50
    assert samples[("kiebot_payments_refunded_total", ())] == 1
    assert samples[("kiebot_database_up", ())] == 1
    labels = {v for (_, pairs) in samples for _, v in pairs}
    assert "a secret prompt" not in text and not labels & {"1", "2", "c1", "c2"}
