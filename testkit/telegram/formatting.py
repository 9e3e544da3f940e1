"""parse_mode="HTML" as Telegram applies it: tags become entities, the user sees plain text.

Supported as documented (core.telegram.org/bots/api#html-style): b/strong, i/em, u/ins,
s/strike/del, span class="tg-spoiler", tg-spoiler, a href, tg-emoji, code, pre (with an inner
code class="language-…"), blockquote [expandable]; entities &lt; &gt; &amp; &quot; and numeric ones.
An unsupported or unclosed tag is refused with "can't parse entities", which is how a bot that
forgets to escape a user's "<prompt>" fails in production. Entity offsets are UTF-16 code units,
as in Telegram.

parse_mode="MarkdownV2" is parsed too (bold, italic, underline, strikethrough, spoiler, inline
code, pre with language, links, quotes at line start), including its escaping rule: any of
_*[]()~`>#+-=|{}.! outside an entity must be preceded by a backslash, the most common way a
MarkdownV2 bot breaks on user text. Legacy "Markdown" is passed through unparsed.
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
    mode = (parse_mode or "").lower()
    if mode == "html":
        plain, parsed = parse_html(text, field)
    elif mode == "markdownv2":
        plain, parsed = parse_markdown_v2(text, field)
    else:
        return text, entities or None
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


_MD_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD_TOGGLES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


class _Markdown:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.out: list[str] = []
        self.length = 0
        self.stack: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []

    def fail(self, detail: str) -> None:
        raise bad_request(f"can't parse entities in {self.field}: {detail}")

    def byte_offset(self, i: int) -> int:
        return len(self.text[:i].encode("utf-8"))

    def emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.length += _utf16_len(chunk)

    def open(self, kind: str, i: int, **extra: Any) -> None:
        self.stack.append({"type": kind, "offset": self.length, "_at": i, "_seq": len(self.entities) + len(self.stack),
                           **extra})

    def close(self) -> None:
        entity = self.stack.pop()
        entity["length"] = self.length - entity["offset"]
        if entity["length"] > 0:
            self.entities.append(entity)

    def read_until(self, i: int, end: str) -> tuple[str, int]:
        """Raw content up to the closing marker, where only ` and \\ need escaping."""
        chunk: list[str] = []
        while i < len(self.text):
            if self.text[i] == "\\" and i + 1 < len(self.text):
                chunk.append(self.text[i + 1])
                i += 2
            elif self.text.startswith(end, i):
                return "".join(chunk), i + len(end)
            else:
                chunk.append(self.text[i])
                i += 1
        self.fail(f"can't find end of the entity starting at byte offset {self.byte_offset(i)}")
        return "", i

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text) and 1 <= ord(text[i + 1]) <= 126:
                self.emit(text[i + 1])
                i += 2
                continue
            marker = "__" if text.startswith("__", i) else "||" if text.startswith("||", i) else c
            if marker in _MD_TOGGLES:
                kind = _MD_TOGGLES[marker]
                if self.stack and self.stack[-1]["type"] == kind:
                    self.close()
                else:
                    self.open(kind, i)
                i += len(marker)
            elif text.startswith("```", i):
                body, i = self.read_until(i + 3, "```")
                language, sep, rest = body.partition("\n")
                code = rest if sep and language and " " not in language else body
                entity = {"type": "pre", "offset": self.length, "_seq": len(self.entities)}
                self.emit(code)
                if code is rest:
                    entity["language"] = language
                entity["length"] = self.length - entity["offset"]
                self.entities.append(entity)
            elif c == "`":
                body, i = self.read_until(i + 1, "`")
                entity = {"type": "code", "offset": self.length, "_seq": len(self.entities)}
                self.emit(body)
                entity["length"] = self.length - entity["offset"]
                self.entities.append(entity)
            elif c == "[" or (c == "!" and text.startswith("![", i)):
                self.open("text_link" if c == "[" else "custom_emoji", i)
                i += 1 if c == "[" else 2
            elif c == "]" and self.stack and self.stack[-1]["type"] in ("text_link", "custom_emoji"):
                if not text.startswith("(", i + 1):
                    self.fail(f"character ']' at byte offset {self.byte_offset(i)} must be followed by a URL in ()")
                url, i = self.read_until(i + 2, ")")
                entity = self.stack[-1]
                if entity["type"] == "custom_emoji":
                    entity["custom_emoji_id"] = url.rsplit("id=", 1)[-1]
                else:
                    entity["url"] = url
                self.close()
            elif c == ">" and (i == 0 or text[i - 1] == "\n"):
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                self.open("blockquote", i)
                sub = _Markdown(text[i + 1:end], self.field)
                plain, inner = sub.parse()
                for e in inner:
                    e["offset"] += self.length
                    e["_seq"] = len(self.entities) + 1
                    self.entities.append(e)
                self.emit(plain)
                self.close()
                i = end
            elif c in _MD_RESERVED:
                self.fail(f"character '{c}' is reserved and must be escaped with the preceding '\\'")
            else:
                self.emit(c)
                i += 1
        if self.stack:
            entity = self.stack[-1]
            self.fail(f"can't find end of {entity['type']} entity at byte offset {self.byte_offset(entity['_at'])}")
        for e in self.entities:
            e.pop("_at", None)
        return "".join(self.out), self.entities


def parse_markdown_v2(text: str, field: str = "text") -> tuple[str, list[dict[str, Any]]]:
    plain, entities = _Markdown(text, field).parse()
    entities = sorted(entities, key=lambda e: (e["offset"], -e["length"], e.get("_seq", 0)))
    for entity in entities:
        entity.pop("_seq", None)
    return plain, entities
