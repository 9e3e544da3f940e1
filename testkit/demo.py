"""`python -m testkit.demo` (`make demo`): the real bot against the KIE emulator and the fake Telegram, one scripted user.

Plays /start → Seedream 4.5 at 16:9 → Bytedance V1 Pro with a photo → a Stars top-up → an edit
from an album of two photos (Nano Banana 2 Edit) → a Veo 3.1 Lite video from the prompt alone
(one entry for text and photos) → /library → a photo template (✨ Templates: the gallery's first
card, Use, one photo), prints the chat as the user saw it, saves received media into ./demo-output and exits 0
only if every step produced what it should (each step waits for its evidence and checks it).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testkit import scripted

USER_ID = 424242
STEP_TIMEOUT_S = scripted.STEP_TIMEOUT_S
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4"}


DemoFailed = scripted.StepNotSeen


class Script:
    """The scripted user: each action waits for what the user should see next."""

    def __init__(self, stack: Any, user: Any, echo: Callable[[str], Any]) -> None:
        self.stack, self.user, self.echo = stack, user, echo

    def show(self, entry: Any) -> None:
        """Print a bot message as it looks at this moment (later edits replace it on screen)."""
        body = entry.text
        if entry.media:
            body = f"[{entry.media[0].kind}, {len(entry.media[0].data or b'')} bytes] {body}"
        if entry.invoice:
            body = f'[invoice "{entry.invoice["title"]}": {entry.invoice["total_amount"]} Telegram Stars]'
        lines = ["  bot │ " + line for line in body.splitlines() or [""]]
        lines += ["      │ " + "  ".join(f"[{b}]" for b in row) for row in entry.buttons]
        self.echo("\n".join(lines))

    async def say(self, text: str) -> None:
        self.echo(f"  Ann │ {text}")
        await self.user.send_text(text)

    async def command(self, text: str) -> None:
        self.echo(f"  Ann │ {text}")
        await self.user.send_command(text)

    async def see(self, needle: str, *, show: bool = True) -> Any:
        entry = await scripted.see(self.user, needle)
        if show:
            self.show(entry)
        return entry

    async def tap(self, text: str) -> None:
        await scripted.see_button(self.user, text)
        self.echo(f"  Ann │ taps [{text}]")
        answer = await self.user.tap(text)
        if not getattr(answer, "answered", True):
            raise DemoFailed(f"the bot did not answer the tap on {text!r}")

    async def media(self, count: int, kind: str) -> Any:
        try:
            entry = (await scripted.wait_media(self.user, count))[count - 1]
        except scripted.StepNotSeen:
            raise DemoFailed(f"no {kind} arrived") from None
        if entry.media[0].kind != kind or not entry.media[0].data:
            raise DemoFailed(f"expected a {kind}, got {entry.media[0].kind}")
        self.show(entry)
        return entry

    async def balance_is(self, expected: int) -> None:
        actual = await self.stack.app.accounts.balance(USER_ID)
        if actual != expected:
            raise DemoFailed(f"balance is {actual}⭐, expected {expected}⭐")


def demo_photo(width: int = 256, height: int = 160) -> bytes:
    from handlers.selftest import test_png

    return test_png(width, height)


# The album step's model (Edit a photo; up to 14 reference photos).
ALBUM_MODEL = "nano_banana_2_edit"
VEO_MODEL = "veo31_lite"


async def album_edit(s: Script) -> int:
    """An edit from an album of two photos; returns its price."""
    catalog = s.stack.app.catalog
    spec = catalog.get(ALBUM_MODEL)
    price = catalog.price(spec.key, catalog.defaults(spec.key))
    await s.command("/start")
    await s.see("Pick a section")
    await s.tap("🖌 Edit a photo")
    await s.tap(f"{spec.name} · {catalog.from_price(spec.key)}⭐")
    await s.tap(f"Continue · {price}⭐")
    await s.see(f"Send a photo for {spec.name}" if spec.image_input.min_count
                else "To start from pictures")
    caption = "Put the two of them on one beach at sunset"
    s.echo(f"  Ann │ [album of 2 photos] {caption}")
    await s.user.send_album([demo_photo(), demo_photo(160, 256)], caption=caption)
    await s.see("Photos: ✅ 2 attached")
    await s.tap(f"Generate · {price}⭐")
    return price


async def template_run(s: Script) -> int:
    """The gallery's first template on one photo; returns its price."""
    templates = s.stack.app.dispatcher["templates"]
    first = templates.visible()[0]
    price = templates.price(first)
    await s.command("/start")
    await s.see("Pick a section")
    await s.tap("✨ Templates")
    await s.media(5, "photo")  # the card, with its example picture
    await s.tap(f"Use · {price}⭐")
    await s.see("send one photo" if first.photos == 1 else "send the first photo")
    s.echo("  Ann │ [photo]")
    await s.user.send_photo(demo_photo(200, 240))
    await s.media(6, "photo")
    task = list(s.stack.kie.tasks.values())[-1]
    if task.input.get("prompt") != first.render_prompt():
        raise DemoFailed("the template's prompt did not reach KIE")
    return price


async def play(s: Script) -> None:
    user = s.user
    await s.command("/start")
    await s.see("Welcome gift: 50⭐")
    await s.balance_is(50)

    await s.tap("🎨 Create an image")
    await s.tap("Seedream 4.5 · 8⭐")
    await s.tap("Aspect ratio: 1:1 ▸")
    await s.tap("16:9")
    await s.see("Aspect ratio: 16:9")
    await s.tap("Continue · 8⭐")
    await s.see("Describe what you want")
    await s.say("A lighthouse on a cliff at dusk, cinematic light")
    await s.see("Ready to generate")
    await s.tap("Generate · 8⭐")
    await s.media(1, "photo")
    await s.balance_is(42)

    await s.command("/start")
    await s.see("Pick a section")
    await s.tap("🎞 Animate a photo")
    await s.tap("Bytedance V1 Pro · 30⭐")
    await s.tap("Continue · 30⭐")
    await s.see("Send a photo for Bytedance V1 Pro")
    s.echo("  Ann │ [photo] The waves begin to roll, gentle camera push-in")
    await user.send_photo(demo_photo(), caption="The waves begin to roll, gentle camera push-in")
    await s.see("Photo: ✅ attached")
    await s.tap("Generate · 30⭐")
    await s.media(2, "video")
    await s.balance_is(12)

    await s.command("/balance")
    await s.see("Balance: 12⭐")
    await s.tap("💳 Top up")
    await s.tap("50⭐ for 50 Telegram Stars")
    try:
        invoice = await user.wait_until(lambda t: next((e for e in t if e.invoice), None),
                                        timeout=STEP_TIMEOUT_S)
    except TimeoutError:
        raise DemoFailed("no invoice arrived") from None
    s.show(invoice)
    s.echo("  Ann │ pays 50 Telegram Stars")
    outcome = await user.pay()
    if not outcome.ok:
        raise DemoFailed(f"payment refused: {outcome.error_message}")
    await s.see("Payment received: +50⭐. Balance: 62⭐")
    await s.balance_is(62)

    spent = await album_edit(s)
    await s.media(3, "photo")
    edit = list(s.stack.kie.tasks.values())[-1]
    if max((len(v) for v in edit.input.values() if isinstance(v, list)), default=0) != 2:
        raise DemoFailed("the album's two photos did not both reach KIE")
    await s.balance_is(62 - spent)

    catalog = s.stack.app.catalog
    veo = catalog.get(VEO_MODEL)
    veo_price = catalog.price(veo.key, catalog.defaults(veo.key))
    await s.command("/start")
    await s.see("Pick a section")
    await s.tap("🎬 Text to video")
    await s.tap(f"{veo.name} · {catalog.from_price(veo.key)}⭐")
    await s.tap(f"Continue · {veo_price}⭐")
    await s.see("To start from pictures, send a photo or an album of up to 2 photos")
    await s.say("A paper boat sails down a rainy street, the camera follows it")
    await s.see("Ready to generate")
    await s.tap(f"Generate · {veo_price}⭐")
    await s.media(4, "video")
    await s.balance_is(62 - spent - veo_price)

    await s.command("/library")
    page = await s.see("Your library: 4")
    if "Seedream 4.5" not in page.text or "Veo 3.1 Lite" not in page.text:
        raise DemoFailed("the library does not list the generations")

    template_price = await template_run(s)
    await s.balance_is(62 - spent - veo_price - template_price)
    problems = await s.stack.app.repository.ledger_check()
    if problems:
        raise DemoFailed(f"ledger check failed: {problems}")


def save_media(user: Any, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    n = 0
    for entry in user.transcript:
        if not entry.from_bot:
            continue
        for item in entry.media:
            if not item.data:
                continue
            n += 1
            ext = _EXT.get(item.mime_type or "", None) or (
                item.file_name.rsplit(".", 1)[-1] if item.file_name and "." in item.file_name else "bin")
            path = folder / f"{n:02d}_{item.kind}.{ext}"
            path.write_bytes(item.data)
            saved.append(path)
    return saved


async def run(out_dir: Path, *, echo: Callable[[str], Any] = print) -> int:
    from testkit.stack import LocalStack

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kiebot-demo-") as tmp:
        async with LocalStack(tmp, webhook=True,
                              settings={"SIGNUP_BONUS": "50", "LOG_LEVEL": "WARNING"}) as stack:
            user = stack.telegram.user(USER_ID, first_name="Ann", language_code="en")
            script = Script(stack, user, echo)
            echo("kiebot demo: the real bot, KIE emulator and fake Telegram on loopback")
            echo("=" * 72)
            failure = None
            try:
                await play(script)
            except DemoFailed as exc:
                failure = str(exc)
            echo("=" * 72)
            saved = save_media(user, out_dir)
            for path in saved:
                echo(f"saved {path} ({path.stat().st_size} bytes)")
            elapsed = time.monotonic() - started
            if failure:
                echo(f"DEMO FAILED after {elapsed:.1f}s: {failure}")
                return 1
            if len(saved) < 4:
                echo("DEMO FAILED: the media were not saved")
                return 1
            echo(f"Demo OK in {elapsed:.1f}s: every step produced what it should.")
            return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return asyncio.run(run(Path.cwd() / "demo-output"))


if __name__ == "__main__":
    raise SystemExit(main())
