"""A template's order shows the template's name, not its long prompt, in the status and the
result caption; other orders keep showing their prompt."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.services.generation import LABEL_KEY
from handlers import build_presenter
from storage.models import Generation

LONG = "Create a 1/7 scale commercialized figurine of the person in the photo " * 5


def _gen(**kw) -> Generation:
    base = dict(id=41, user_id=1, chat_id=1, status="queued", task_id=None, kind="image",
                model_key="nano_banana_2_edit", prompt=LONG, cost=10, created_at=datetime.now(UTC))
    return Generation(**{**base, **kw})


def test_a_template_order_shows_its_name():
    p = build_presenter()
    g = _gen(options={"aspect_ratio": "3:4", LABEL_KEY: "✨ 3D-фигурка"}, status="succeeded")
    assert p.result_caption(g, language="ru") == "Nano Banana 2 Edit · ✨ 3D-фигурка"
    status = p.status(_gen(options={LABEL_KEY: "✨ 3D figurine"}), language="en", position=1,
                      elapsed_s=0.0).text
    assert "✨ 3D figurine" in status and "1/7 scale" not in status


def test_other_orders_keep_their_prompt():
    p = build_presenter()
    assert "1/7 scale" in p.result_caption(_gen(options={}, status="succeeded"), language="en")
