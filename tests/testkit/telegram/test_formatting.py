"""parse_mode=HTML: the user sees plain text plus entities; broken markup is refused."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from testkit.telegram import FakeTelegram
from testkit.telegram.errors import ApiError
from testkit.telegram.formatting import parse_html, parse_markdown_v2

from .conftest import TOKEN
from .scenario import png_bytes


def test_tags_become_entities_with_utf16_offsets() -> None:
    text, entities = parse_html('<b>Hi</b> &lt;3 😀 <a href="https://x.org">link</a> &#65;&amp;')
    assert text == "Hi <3 😀 link A&"
    assert entities == [{"type": "bold", "offset": 0, "length": 2},
                        {"type": "text_link", "url": "https://x.org", "offset": 9, "length": 4}]


def test_pre_with_language_and_nesting() -> None:
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre><i><u>iu</u></i>'
                                '<blockquote expandable>q</blockquote><span class="tg-spoiler">s</span>')
    assert text == "x = 1iuqs"
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"},
                        {"type": "italic", "offset": 5, "length": 2},
                        {"type": "underline", "offset": 5, "length": 2},
                        {"type": "expandable_blockquote", "offset": 7, "length": 1},
                        {"type": "spoiler", "offset": 8, "length": 1}]


@pytest.mark.parametrize("markup, fragment", [
    ("make a <prompt> here", 'unsupported start tag "prompt" at byte offset 7'),
    ("é <div>x</div>", 'unsupported start tag "div" at byte offset 3'),
    ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
    ("<b>x</i>", 'unexpected end tag "i"'),
])
def test_broken_markup_is_refused(markup: str, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_html(markup)
    assert info.value.code == 400 and fragment in info.value.description
    assert info.value.description.startswith("Bad Request: can't parse entities in text: ")


async def test_bot_with_html_default(fake: FakeTelegram) -> None:
    user = fake.user(8)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)),
              default=DefaultBotProperties(parse_mode="HTML"))
    try:
        sent = await bot.send_message(8, "<b>Done</b> in 3s")
        assert sent.text == "Done in 3s" and sent.entities[0].type == "bold"
        assert (await bot.send_message(8, "<b>" + "x" * 4096 + "</b>")).text == "x" * 4096
        with pytest.raises(TelegramBadRequest, match="unsupported start tag \"cat\""):
            await bot.send_message(8, "a prompt about <cat>")
        photo = await bot.send_photo(8, BufferedInputFile(png_bytes(), "p.png"), caption="<i>art</i>")
        assert photo.caption == "art" and photo.caption_entities[0].type == "italic"
        with pytest.raises(TelegramBadRequest, match="caption is too long"):
            await bot.send_photo(8, BufferedInputFile(png_bytes(), "p.png"), caption="<i>" + "c" * 1025 + "</i>")
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("<b>Done</b> in 3s", chat_id=8, message_id=sent.message_id)
        edited = await bot.edit_message_text("<b>Done</b> in 4s", chat_id=8, message_id=sent.message_id)
        assert edited.text == "Done in 4s"
    finally:
        await bot.session.close()
    assert [e.text for e in user.transcript] == ["Done in 4s", "x" * 4096, "art"]


def test_markdown_v2_entities_and_escapes() -> None:
    text, entities = parse_markdown_v2(r"*Done* in 3\.5s, _see_ [docs](https://x.org/a\)b) `a\`b` ||s||")
    assert text == "Done in 3.5s, see docs a`b s"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 4), ("italic", 14, 3), ("text_link", 18, 4), ("code", 23, 3), ("spoiler", 27, 1)]
    assert entities[2]["url"] == "https://x.org/a)b"
    text, entities = parse_markdown_v2("```python\nprint(1)\n```")
    assert text == "print(1)\n" and entities[0]["language"] == "python"


@pytest.mark.parametrize("markup, fragment", [
    ("Done.", "character '.' is reserved and must be escaped with the preceding '\\'"),
    ("price: 5-10", "character '-' is reserved"),
    ("*bold", "can't find end of bold entity at byte offset 0"),
    ("`code", "can't find end of the entity"),
])
def test_markdown_v2_mistakes_are_refused(markup: str, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_markdown_v2(markup)
    assert fragment in info.value.description


async def test_markdown_v2_through_aiogram(fake: FakeTelegram, bot: Bot) -> None:
    fake.user(9)
    sent = await bot.send_message(9, r"*Balance:* 50 ⭐\.", parse_mode="MarkdownV2")
    assert sent.text == "Balance: 50 ⭐." and sent.entities[0].type == "bold"
    with pytest.raises(TelegramBadRequest, match="character '!' is reserved"):
        await bot.send_message(9, "Thanks!", parse_mode="MarkdownV2")
    legacy = await bot.send_message(9, "*kept as is*", parse_mode="Markdown")
    assert legacy.text == "*kept as is*"
