"""`kiebot demo` runs the whole script green and saves the media it received."""

from __future__ import annotations

from kie_client.catalog import Catalog
from testkit import demo, scripted


async def test_demo_plays_every_step_and_saves_media(tmp_path):
    lines: list[str] = []
    code = await demo.run(tmp_path / "demo-output", echo=lines.append)
    out = "\n".join(lines)
    assert code == 0, out
    assert "Demo OK" in out and "Ann │ taps [Generate · 8⭐]" in out
    assert "Payment received: +50⭐. Balance: 62⭐" in out and "Your library: 4" in out
    assert "[album of 2 photos]" in out and "Photos: ✅ 2 attached" in out
    lite = Catalog().from_price("veo31_lite")
    assert f"Ann │ taps [Veo 3.1 Lite · {lite}⭐]" in out and "Nano Banana 2 Edit" in out
    saved = sorted(p.name for p in (tmp_path / "demo-output").iterdir())
    assert "Ann │ taps [✨ Templates]" in out and "Ann │ taps [Use · 10⭐]" in out
    assert "3D figurine" in out
    assert saved == ["01_photo.png", "02_video.mp4", "03_photo.png", "04_video.mp4",
                     "05_photo.png", "06_photo.png"]  # 05: the template's example card
    assert (tmp_path / "demo-output" / "01_photo.png").read_bytes().startswith(b"\x89PNG")


async def test_demo_fails_loudly_when_a_step_does_not_happen(tmp_path, monkeypatch):
    async def broken(script):
        await script.command("/start")
        # A short wait of its own: the demo's steps wait up to scripted.STEP_TIMEOUT_S.
        await scripted.see(script.user, "this text never appears", timeout=1.0)

    monkeypatch.setattr(demo, "play", broken)
    lines: list[str] = []
    assert await demo.run(tmp_path / "out", echo=lines.append) == 1
    assert "DEMO FAILED" in "\n".join(lines)
