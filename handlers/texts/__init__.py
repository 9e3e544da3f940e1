"""User-facing texts in Russian and English.

`tr(lang, key, **kw)` is the only way handlers get a string, so a missing key or placeholder is a
test failure (tests/conversation/test_texts.py) rather than a KeyError in front of a user.
Texts are plain (no parse mode): user prompts are shown verbatim without escaping rules.
"""

from __future__ import annotations

from bot.services.accounts import language_for
from handlers.texts import en, ru

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"
TABLES: dict[str, dict[str, str]] = {"ru": ru.TEXTS, "en": en.TEXTS}


def normalise(lang: str | None) -> str:
    return lang if lang in TABLES else DEFAULT_LANGUAGE


def tr(lang: str | None, key: str, **kw: object) -> str:
    text = TABLES[normalise(lang)][key]
    return text.format(**kw) if kw else text
