"""parse_mode="HTML" as Telegram applies it: tags become entities, the user sees plain text.

Supported as documented (core.telegram.org/bots/api#html-style): b/strong, i/em, u/ins,
s/strike/del, span class="tg-spoiler", tg-spoiler, a href, tg-emoji, code, pre (with an inner
code class="language-…"), blockquote [expandable]; entities &lt; &gt; &amp; &quot; and numeric ones.
An unsupported or unclosed tag is refused with "can't parse entities", which is how a bot that
forgets to escape a user's "<prompt>" fails in production. Entity offsets are UTF-16 code units,
as in Telegram. Markdown modes are passed through unparsed (the fake does not model them).
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

from .errors import bad_request

_SIMPLE = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
           "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
           "code": "code", "pre": "pre", "blockquote": "blockquote"}


def apply_parse_mode(text: str, parse_mode: str | None, entities: Any, field: str) -> tuple[str, list | None]:
    """The text the user sees and its entities."""
    if parse_mode is None or parse_mode.lower() != "html":
        return text, entities or None
    plain, parsed = parse_html(text, field)
    return plain, parsed or None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Parser(HTMLParser):
    def __init__(self, field: str, raw: str) -> None:
        super().__init__(convert_charrefs=False)
        self.field = field
        self.raw = raw
        self.parts: list[str] = []
        self.length = 0  # UTF-16 units emitted so far
        self.stack: list[tuple[str, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []
        self.started = 0

    def _fail(self, detail: str) -> None:
        raise bad_request(f"can't parse entities in {self.field}: {detail}")

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += _utf16_len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        entity: dict[str, Any]
        if tag in _SIMPLE and tag != "blockquote":
            entity = {"type": _SIMPLE[tag]}
            if tag == "code" and self.stack and self.stack[-1][0] == "pre":
                language = (attributes.get("class") or "").removeprefix("language-")
                if language:
                    self.stack[-1][1]["language"] = language
        elif tag == "blockquote":
            entity = {"type": "expandable_blockquote" if "expandable" in attributes else "blockquote"}
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            entity = {"type": "spoiler"}
        elif tag == "a" and attributes.get("href"):
            entity = {"type": "text_link", "url": attributes["href"]}
        elif tag == "tg-emoji" and attributes.get("emoji-id"):
            entity = {"type": "custom_emoji", "custom_emoji_id": attributes["emoji-id"]}
        else:
            self._fail(f'unsupported start tag "{tag}" at byte offset {self._offset()}')
            return
        entity["offset"] = self.length
        entity["_seq"] = self.started  # start order, so an outer tag sorts before an inner one
        self.started += 1
        self.stack.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self._fail(f'unexpected end tag "{tag}" at byte offset {self._offset()}')
        _, entity = self.stack.pop()
        entity["length"] = self.length - entity["offset"]
        if entity["length"] > 0:
            if entity["type"] == "code" and self.stack and self.stack[-1][0] == "pre":
                return  # <pre><code class=…> is one pre entity with a language
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def handle_entityref(self, name: str) -> None:
        self._emit({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(name, f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self._emit(html.unescape(f"&#{name};"))

    def _offset(self) -> int:
        line, column = self.getpos()
        index = sum(len(chunk) + 1 for chunk in self.raw.split("\n")[: line - 1]) + column
        return len(self.raw[:index].encode("utf-8"))


def parse_html(text: str, field: str = "text") -> tuple[str, list[dict[str, Any]]]:
    parser = _Parser(field, text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        parser._fail(f'can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"], e["_seq"]))
    for entity in entities:
        del entity["_seq"]
    return "".join(parser.parts), entities
