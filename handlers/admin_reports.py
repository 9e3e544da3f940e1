"""What admins read: the /user and /stats reports and account errors, in the admin's language.
Pure functions of the data (no I/O), so the texts are tested without a chat."""

from __future__ import annotations

from bot.services.accounts import AccountError, UserReport
from handlers.texts import count, tr
from kie_client.catalog import Catalog, CatalogError
from storage.models import GenerationStatus

_PERIODS = {"today": "adm_period_today", "7 days": "adm_period_week", "all": "adm_period_all"}
_STATUS_KEYS = frozenset(status.value for status in GenerationStatus)


def yes_no(lang: str, value: object) -> str:
    return tr(lang, "adm_yes" if value else "adm_no")


def status_text(lang: str, status: str) -> str:
    """A generation status in words; a status this code does not know is shown as stored."""
    return tr(lang, f"status_{status}") if status in _STATUS_KEYS else status


def language_name(lang: str, code: str | None) -> str:
    return tr(lang, f"adm_lang_{code}") if code in ("ru", "en") else tr(lang, "adm_lang_none")


def model_name(catalog: Catalog | None, key: str) -> str:
    """The catalog's display name; a key the catalog no longer has is shown as stored."""
    if catalog is None:
        return key
    try:
        return catalog.get(key).name
    except CatalogError:
        return key


def account_error_text(lang: str, exc: AccountError) -> str:
    if exc.code == "below_zero":
        return tr(lang, "adm_credit_refused", balance=exc.params.get("balance", 0))
    if exc.code == "no_user":
        return tr(lang, "adm_err_no_user", who=exc.params.get("who", ""))
    if exc.code in ("bad_amount", "zero_amount", "amount_range", "bad_note"):
        return tr(lang, f"adm_err_{exc.code}")
    return tr(lang, "adm_err_generic")


def format_user(lang: str, rep: UserReport, catalog: Catalog | None = None) -> str:
    user = rep.user
    gens = "\n".join(
        tr(lang, "adm_user_gen", id=g.id, model=model_name(catalog, g.model_key),
           status=status_text(lang, g.status), cost=g.cost, date=f"{g.created_at:%d.%m %H:%M}")
        for g in rep.generations) or "—"
    pays = "\n".join(
        tr(lang, "adm_user_pay", charge=p.telegram_payment_charge_id, stars=p.stars,
           credits=p.credits, date=f"{p.created_at:%d.%m %H:%M}",
           refunded=tr(lang, "adm_user_pay_refunded") if p.refunded_at else "")
        for p in rep.payments) or "—"
    name = " ".join(x for x in (user.first_name, user.last_name) if x)
    return tr(
        lang, "adm_user", user_id=user.id, username=f"@{user.username}" if user.username else "",
        name=name, language=language_name(lang, user.language), blocked=yes_no(lang, user.blocked),
        balance=user.balance, count=count(lang, rep.generation_count, "generation"),
        generations=gens, payments=pays)


def format_stats(lang: str, stats: dict[str, dict], catalog: Catalog | None = None) -> str:
    """AccountService.stats() per period: generations per model and status, then the money."""
    blocks = []
    for period, s in stats.items():
        per_model: dict[str, list[str]] = {}
        for (model, status), n in sorted(s.get("generations", {}).items()):
            per_model.setdefault(model_name(catalog, model), []).append(
                f"{status_text(lang, status)} {n}")
        label = tr(lang, _PERIODS[period]) if period in _PERIODS else period
        lines = [tr(lang, "adm_stats_period", period=label)]
        lines += [f"{m}: {', '.join(v)}" for m, v in per_model.items()] or [
            tr(lang, "adm_stats_no_gens")]
        lines.append(tr(
            lang, "adm_stats_money", sold=s.get("credits_sold", 0),
            payments=count(lang, s.get("payments", 0), "payment"), stars=s.get("stars", 0),
            spent=s.get("credits_spent", 0), refunded=s.get("credits_refunded", 0),
            bonus=s.get("credits_bonus", 0)))
        blocks.append("\n".join(lines))
    return tr(lang, "adm_stats", body="\n\n".join(blocks))
