"""The pipeline's words through the conversation presenter (ru/en, buttons, limits)."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers import build_presenter
from handlers.callbacks import GenAction, GenCb
from storage.models import Generation


def _gen(**kw) -> Generation:
    base = dict(id=41, user_id=1, chat_id=1, status="queued", task_id=None, kind="image",
                model_key="seedream_45_t2i", prompt="a fox", cost=8,
                created_at=datetime.now(UTC))
    return Generation(**{**base, **kw})


def _buttons(markup):
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


def test_queued_status_has_position_and_a_cancel_button():
    p = build_presenter()
    r = p.status(_gen(), language="en", position=3, elapsed_s=75)
    assert "Seedream 4.5: waiting in line, place 3. (1:15)" in r.text and "Prompt: a fox" in r.text
    assert _buttons(r.reply_markup) == [("✖ Cancel", "g:x:41")]
    assert GenCb.unpack("g:x:41") == GenCb(action=GenAction.CANCEL, generation_id=41)
    r = p.status(_gen(status="generating"), language="ru", position=None, elapsed_s=5)
    assert "генерируется" in r.text and r.reply_markup is None


def test_result_buttons_depend_on_kind_and_language():
    p = build_presenter()
    stored = {"status": "succeeded", "stored_paths": ("1/image/41_0.png",),
              "options": {"aspect_ratio": "16:9", "quality": "high", "_media_token": "t"}}
    image = p.result_markup(_gen(**stored), language="ru")
    rows = [[b.text for b in row] for row in image.inline_keyboard]
    animate_from = rows[1][1].rsplit(" ", 1)[-1]
    # Every follow-up with its price; the "better" model (catalog data) on a row of its own.
    assert rows == [["🔁 Ещё раз · 8⭐", "📎 Исходный файл"],
                    ["✏️ Изменить · 8⭐", f"🎬 Оживить · от {animate_from}"],
                    ["⬆️ Увеличить · 10⭐", "✂️ Убрать фон · 2⭐"],
                    ["💎 Переделать в Nano Banana Pro · 18⭐"]]
    assert [d for _, d in _buttons(image)][2:] == ["fu:ed:41", "g:anim:41", "fu:up:41", "fu:bg:41",
                                                   "fu:bt:41"]
    video = [t for t, _ in _buttons(p.result_markup(
        _gen(kind="video", model_key="kling_26_t2v", **stored), language="en"))]
    assert video[1:] == ["📎 Original file"] and video[0].startswith("🔁 Again · ")
    # A result not (or no longer) stored offers nothing that would need our copy.
    bare = [t for t, _ in _buttons(p.result_markup(_gen(status="succeeded"), language="en"))]
    assert bare == ["🔁 Again · 8⭐", "📎 Original file"]
    caption = p.result_caption(_gen(prompt="x" * 5000), language="en")
    assert len(caption) <= 1024 and caption.endswith("…")


def test_failure_names_the_reason_and_refund():
    p = build_presenter()
    r = p.failure(_gen(status="failed", error="KIE could not generate this: flagged as sensitive",
                       fail_code="400"), language="en")
    assert r.text == ("❌ Seedream 4.5: the model refused this request (often its content filter). "
                      "Try changing the prompt or the picture.\nRefunded to your balance: 8⭐.")
    r = p.failure(_gen(status="failed", error=None, cost=0), language="ru")
    assert r.text == "❌ Seedream 4.5: генерация не удалась."
    r = p.link_instead(_gen(status="succeeded"), "https://example.org/f.mp4", language="en")
    assert "https://example.org/f.mp4" in r.text
