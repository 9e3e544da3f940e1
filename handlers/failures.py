"""Why something failed, in the user's language.

The pipeline stores an English `error` (KIE's `user_reason` or our own words) and a `fail_code`
(KIE's HTTP/body code or the task's failCode) on the generation row; those stay for operators and
logs. Users get one localized sentence for the kind of failure, chosen from the code and from the
fixed phrases the pipeline writes (bot/services/pipeline/, kie_client/errors.py, bot/downloads.py).
Catalog errors are rendered from their attributes, never from their English str().
"""

from __future__ import annotations

import re

from handlers import keyboards
from handlers.texts import count, tr
from kie_client.catalog import (
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    MissingFieldError,
    ModelDisabledError,
    ModelSpec,
    PromptCharactersError,
    UnknownModelError,
)

_TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}
_MINUTES = re.compile(r"longer than (\d+) minutes")
_CONTENT = re.compile(r"sensitive|nsfw|safety|policy|flagged|inappropriate|prohibited|violat", re.I)

# Fixed phrases of our pipeline and of kie_client's default reasons, checked before the codes.
_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model", ("is no longer available",)),
    ("internal", ("a problem on our side",)),
    ("service", ("out of credits", "usage limit", "API key", "not enabled", "could not reach")),
    ("maintenance", ("maintenance",)),
    ("busy", ("too many requests",)),
    ("timeout", ("took longer than", "no result for too long", "did not confirm",
                 "did not answer in time")),
    ("download", ("result file", "without a result")),
    ("source", ("source photo", "needs a photo")),
    ("refused", ("rejected the request", "no longer valid", "missing a parameter",
                 "upload was rejected")),
)
_CODES = {
    "401": "service", "402": "service", "433": "service", "505": "service",
    "455": "maintenance", "429": "busy", "408": "timeout",
    "400": "refused", "422": "refused",
}


def failure_kind(error: str | None, fail_code: str | None) -> str:
    """One of: cancelled, model, internal, service, maintenance, busy, timeout, download, source, refused, generic."""
    text = (error or "").strip()
    if text == "cancelled":
        return "cancelled"
    if text.startswith("KIE could not generate this"):
        # The task itself failed on KIE: its own message says whether a filter stopped it.
        if _CONTENT.search(text) or str(fail_code) in ("400", "422"):
            return "refused"
        return "generic"
    for kind, phrases in _PHRASES:
        if any(p.lower() in text.lower() for p in phrases):
            return kind
    return _CODES.get(str(fail_code), "generic")


def failure_text(lang: str | None, error: str | None, fail_code: str | None = None) -> str:
    """The localized reason for a failed generation (no trailing full stop)."""
    kind = failure_kind(error, fail_code)
    if kind == "cancelled":
        return tr(lang, "reason_cancelled")
    if kind == "timeout":
        match = _MINUTES.search(error or "")
        if match:
            return tr(lang, "fail_timeout_minutes", minutes=count(lang, int(match.group(1)), "minute"))
    return tr(lang, f"fail_{kind}")


def image_rule_text(lang: str, spec: ModelSpec) -> str:
    """What pictures `spec` accepts, from its ImageInputRule."""
    rule = spec.image_input
    types = ", ".join(_TYPE_NAMES.get(m, m) for m in rule.mime_types)
    return tr(lang, "err_image_rule", types=types, mb=rule.max_bytes // (1024 * 1024))


def source_text(lang: str, reason: str, spec: ModelSpec | None) -> str:
    """A SourceImageError's English user_reason → the localized reason."""
    lowered = reason.lower()
    if "needs a photo" in lowered:  # before the next check: a model's name may say "Animate"
        return tr(lang, "src_missing")
    if "not available to animate" in lowered or "no longer stored" in lowered:
        return tr(lang, "src_gone")
    if "not a picture" in lowered:  # bot/services/generation.py NOT_A_PICTURE: sniffed content
        return tr(lang, "src_not_image")
    if spec is not None and spec.image_input is not None:
        return image_rule_text(lang, spec)
    return tr(lang, "fail_source")


def prompt_text(lang: str, exc: InvalidPromptError) -> str:
    if isinstance(exc, PromptCharactersError):
        return tr(lang, "err_prompt_control" if exc.problem == "control" else "err_prompt_invisible")
    if exc.length > exc.max:
        return tr(lang, "err_prompt_long", length=count(lang, exc.length, "char"), max=exc.max)
    return tr(lang, "err_prompt_short", length=count(lang, exc.length, "char"), min=exc.min)


def catalog_text(lang: str, exc: CatalogError, spec: ModelSpec | None = None) -> str:
    """A catalog error rendered from its attributes in the user's language."""
    if isinstance(exc, UnknownModelError):
        return tr(lang, "cat_unknown_model")
    if isinstance(exc, ModelDisabledError):
        return tr(lang, "model_off", name=spec.name if spec is not None else exc.key)
    if isinstance(exc, InvalidPromptError):
        return prompt_text(lang, exc)
    if isinstance(exc, ImageInputError):
        if spec is not None and spec.image_input is not None:
            return image_rule_text(lang, spec)
        return tr(lang, "fail_source")
    if isinstance(exc, InvalidOptionError):
        option = spec.option(exc.field) if spec is not None else None
        label = keyboards.option_label(lang, option) if option is not None else str(exc.field)
        if isinstance(exc, MissingFieldError):
            return tr(lang, "cat_missing", label=label)
        allowed = ", ".join(keyboards.value_text(lang, v, option) for v in exc.allowed)
        return tr(lang, "cat_bad_option", label=label,
                  value=keyboards.value_text(lang, exc.value, option), allowed=allowed or "—")
    return tr(lang, "cat_generic")
