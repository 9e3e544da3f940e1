"""Failure reasons and catalog errors in the user's language, from what the pipeline stores."""

from __future__ import annotations

import pytest

from bot.downloads import DownloadError, DownloadTooLargeError
from bot.services.pipeline.complete import failure_reason
from bot.services.pipeline.failures import GAVE_UP_DELIVERY, GAVE_UP_REASON
from handlers import build_presenter
from handlers.failures import catalog_text, failure_text, source_text
from handlers.texts import count, decimal, tr
from kie_client.catalog import Catalog, CatalogError
from kie_client.errors import error_for
from kie_client.types import TaskRecord, TaskState
from tests.unit.handlers.test_presenter import _gen


def _kie(status: int) -> tuple[str, str]:
    """(error, fail_code) as the submitter stores them for a KIE refusal with this code."""
    exc = error_for(status, status, "upstream said no", None)
    return exc.user_reason, str(status)


def _task(fail_code: str | None, fail_msg: str | None) -> tuple[str, str | None]:
    record = TaskRecord(task_id="t1", model="m", state=TaskState("fail"), fail_code=fail_code,
                        fail_msg=fail_msg)
    return failure_reason(record), record.fail_code


CASES = [
    (_kie(402), "fail_service"),
    (_kie(433), "fail_service"),
    (_kie(455), "fail_maintenance"),
    (_kie(422), "fail_refused"),
    (_task("400", "Your prompt was flagged as sensitive"), "fail_refused"),
    (_task("500", "Internal error, please try again"), "fail_generic"),
    (_task(None, None), "fail_generic"),
    ((DownloadError.user_reason, None), "fail_download"),
    ((DownloadTooLargeError.user_reason, None), "fail_download"),
    (("KIE did not confirm the task in time", None), "fail_timeout"),
    (("the model kling_26_t2v is no longer available", None), "fail_model"),
    (("the source photo could not be read", None), "fail_source"),
    (("something nobody planned for", "999"), "fail_generic"),
    ((GAVE_UP_REASON, None), "fail_internal"),
    ((GAVE_UP_DELIVERY, None), "fail_internal"),
]


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize(("stored", "key"), CASES)
def test_stored_failures_read_in_the_users_language(stored, key, lang):
    error, code = stored
    text = failure_text(lang, error, code)
    assert text == tr(lang, key)
    assert error not in text  # never KIE's or our English words


def test_timeout_names_the_minutes_with_the_right_plural():
    assert failure_text("ru", "it took longer than 30 minutes") == "генерация не уложилась в 30 минут"
    assert failure_text("ru", "it took longer than 2 minutes") == "генерация не уложилась в 2 минуты"
    assert failure_text("ru", "it took longer than 1 minutes") == "генерация не уложилась в 1 минуту"
    assert failure_text("en", "it took longer than 1 minutes") == "it took longer than 1 minute"
    assert failure_text("ru", "cancelled") == "отменено"


def test_presenter_failure_in_russian_has_no_english():
    p = build_presenter()
    error, code = _kie(402)
    r = p.failure(_gen(status="failed", error=error, fail_code=code), language="ru")
    assert r.text == ("❌ Seedream 4.5: сервис генерации временно недоступен из-за проблемы на нашей "
                      "стороне. Попробуйте позже.\nНа баланс возвращено 8⭐.")
    r = p.failure(_gen(status="failed", error=error, fail_code=code, cost=1), language="en")
    assert r.text.endswith("Please try again later.\nRefunded to your balance: 1⭐.")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_admins_stage_alert_names_the_row_and_the_limits(lang):
    text = build_presenter().stage_alert(
        _gen(status="storing"), stage="store", reason="PermissionError: [Errno 13] Permission denied",
        attempts=3, max_attempts=6, quiet_minutes=15, language=lang)
    g = _gen(status="storing")
    for part in ("store", str(g.id), str(g.user_id), "Seedream 4.5", "3", "6", "15",
                 "PermissionError: [Errno 13] Permission denied"):
        assert part in text
    assert text == tr(lang, "adm_stage_alert", stage="store", generation=g.id, user_id=g.user_id,
                      name="Seedream 4.5", attempts=3, max_attempts=6,
                      reason="PermissionError: [Errno 13] Permission denied", minutes=15)


def test_catalog_errors_are_rendered_from_their_attributes():
    catalog = Catalog()
    spec = catalog.get("seedream_45_t2i")

    def error(call):
        with pytest.raises(CatalogError) as info:
            call()
        return info.value

    bad = error(lambda: catalog.normalise_options(spec.key, {"quality": "ultra"}))
    assert catalog_text("ru", bad, spec) == (
        "«Качество» не может быть «ultra», можно: стандарт (2K), высокое (4K)")
    assert catalog_text("en", bad, spec) == (
        "Quality can't be ultra; choose one of: standard (2K), high (4K)")
    long = error(lambda: catalog.validate_prompt(spec.key, "x" * 3001))
    assert catalog_text("ru", long, spec).startswith("Описание слишком длинное: 3001 символ, максимум 3000")
    i2v = catalog.get("kling_26_i2v")
    image = error(lambda: catalog.check_image(i2v.key, mime_type="image/gif", size=10))
    assert catalog_text("ru", image, i2v) == "подходят JPEG, PNG, WebP до 10 МБ"
    unknown = error(lambda: catalog.get("nope"))
    assert catalog_text("ru", unknown) == "этой модели больше нет"


def test_source_errors_are_localized():
    spec = Catalog().get("kling_26_i2v")
    assert source_text("ru", "that picture is not available to animate", spec) == (
        "этой картинки больше нет в хранилище")
    assert source_text("ru", "Kling 2.6 Animate needs a photo to start from", spec) == "модели нужно фото"
    assert "МБ" in source_text("ru", "image is 99999999 bytes; at most 10 MB allowed", spec)


def test_plural_and_decimal_helpers():
    assert [count("ru", n, "generation") for n in (1, 3, 5, 11, 21, 104)] == [
        "1 генерация", "3 генерации", "5 генераций", "11 генераций", "21 генерация", "104 генерации"]
    assert [count("en", n, "generation") for n in (1, 2, 0)] == [
        "1 generation", "2 generations", "0 generations"]
    assert [count("ru", n, "char") for n in (1, 2, 5)] == ["1 символ", "2 символа", "5 символов"]
    assert decimal("ru", 11.0) == "11,0" and decimal("en", 10.25, 2) == "10.25"
    assert tr("ru", "inflight_limit", generations=count("ru", 3, "generation")).startswith(
        "У вас уже 3 генерации в работе")
