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


def plural_index(lang: str | None, n: int) -> int:
    """Which form of a counted noun: ru 1 генерация / 2 генерации / 5 генераций; en 1 / many."""
    n = abs(int(n))
    if normalise(lang) == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 1


def count(lang: str | None, n: int, word: str) -> str:
    """"5 генераций" / "1 generation": the number and the right form of `word_<word>` ("a|b|c")."""
    forms = tr(lang, f"word_{word}").split("|")
    return f"{n} {forms[min(plural_index(lang, n), len(forms) - 1)]}"


def decimal(lang: str | None, value: float, digits: int = 1) -> str:
    """A number with the language's decimal mark: ru "11,0", en "11.0"."""
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if normalise(lang) == "ru" else text
