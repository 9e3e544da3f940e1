"""Unit tests: texts in both languages, callback data sizes, keyboards from the catalog."""

from __future__ import annotations

import string

import pytest

from handlers import keyboards, screens
from handlers.callbacks import (
    OPEN_VALUES,
    FlowAction,
    FlowCb,
    GenAction,
    GenCb,
    JobPickCb,
    LangCb,
    LibCb,
    MenuAction,
    MenuCb,
    OptCb,
    PackCb,
    PickCb,
    SelfTestCb,
)
from handlers.texts import TABLES, language_for, tr
from kie_client.catalog import Catalog, Job

BIG = 2**53  # larger than any id we will see; callback data must still fit


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_exists_in_both_languages_with_the_same_placeholders():
    ru, en = TABLES["ru"], TABLES["en"]
    assert set(ru) == set(en), set(ru) ^ set(en)
    for key in en:
        assert _fields(ru[key]) == _fields(en[key]), key
        assert ru[key].strip() and en[key].strip(), key


def test_russian_texts_are_russian():
    for key in ("main_menu", "ask_prompt", "help", "job_create_image"):
        assert any("а" <= ch <= "я" for ch in tr("ru", key, balance=1, min=1, max=2).lower()), key


@pytest.mark.parametrize("code,expected", [
    ("ru", "ru"), ("uk", "ru"), ("be", "ru"), ("kk", "ru"), ("ru-RU", "ru"),
    ("en", "en"), ("en-US", "en"), ("de", "en"), (None, "en"), ("", "en"),
])
def test_language_from_telegram_code(code, expected):
    assert language_for(code) == expected


def test_callback_data_fits_for_every_model_option_and_value():
    catalog = Catalog()
    packed = []
    for spec in catalog.models():
        packed.append(PickCb(model=spec.key, source_id=BIG).pack())
        packed.append(JobPickCb(model=spec.key, job="a", source_id=BIG).pack())
        packed.append(SelfTestCb(model=spec.key).pack())
        for oi, option in enumerate(spec.options):
            packed.append(OptCb(draft=BIG, option=oi, value=OPEN_VALUES).pack())
            for vi, _ in enumerate(option.values):
                packed.append(OptCb(draft=BIG, option=oi, value=vi).pack())
    packed += [FlowCb(draft=BIG, action=action).pack() for action in FlowAction]
    packed += [GenCb(action=action, generation_id=BIG).pack() for action in GenAction]
    packed += [MenuCb(action=action).pack() for action in MenuAction]
    packed += [LibCb(page=2**31 - 1).pack(), PackCb(stars=2**31 - 1, credits=2**31 - 1).pack(),
               LangCb(language="ru").pack()]
    assert all(len(p.encode()) <= 64 for p in packed), max(packed, key=len)


def test_numbers_past_what_a_field_can_mean_do_not_unpack():
    """Forged data with such numbers matches no handler: the fallback answers "expired"."""
    for data in (f"g:doc:{2**63}", "g:doc:-1", f"l:{2**31}", f"t:1:{2**31}", f"o:0:{2**15}:0",
                 f"f:{2**63}:go", f"p:kling_26_i2v:{2**64}"):
        cb = {"g": GenCb, "l": LibCb, "t": PackCb, "o": OptCb, "f": FlowCb, "p": PickCb}[data[0]]
        with pytest.raises(ValueError):
            cb.unpack(data)
    assert GenCb.unpack(f"g:doc:{2**63 - 1}").generation_id == 2**63 - 1


def test_only_values_are_packed_so_the_wire_format_stays_short():
    # Buttons already sent before a release keep working only while these strings stay the same.
    assert MenuCb(action=MenuAction.TOP_UP).pack() == "m:topup"
    assert FlowCb(draft=7, action=FlowAction.GENERATE).pack() == "f:7:go"
    assert GenCb(action=GenAction.ORIGINAL, generation_id=41).pack() == "g:doc:41"
    assert OptCb(draft=3, option=1, value=OPEN_VALUES).pack() == "o:3:1:-1"
    assert PickCb(model="kling_26_i2v", source_id=5).pack() == "p:kling_26_i2v:5"
    assert MenuCb.unpack("m:bal") == MenuCb(action=MenuAction.BALANCE)
    assert GenCb.unpack("g:anim:9").action is GenAction.ANIMATE


def test_callbacks_round_trip_and_reject_tampering():
    assert OptCb.unpack(OptCb(draft=3, option=1, value=2).pack()) == OptCb(draft=3, option=1, value=2)
    with pytest.raises((ValueError, TypeError)):
        OptCb.unpack("o:3:x:2")
    with pytest.raises((ValueError, TypeError)):
        GenCb.unpack("m:again:1")
    with pytest.raises((ValueError, TypeError)):
        GenCb.unpack("g:sell:1")  # not a GenAction
    with pytest.raises((ValueError, TypeError)):
        MenuCb.unpack("m:admin")


def _buttons(markup):
    return [b for row in markup.inline_keyboard for b in row]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_option_screens_cover_only_the_models_options(lang):
    catalog = Catalog()
    for spec in catalog.models():
        draft = {"d": 7, "model": spec.key, "opts": catalog.defaults(spec.key)}
        text, markup = screens.options(lang, catalog, draft)
        buttons = _buttons(markup)
        price = catalog.price(spec.key, draft["opts"])
        assert f"{price}⭐" in text
        option_buttons = [b for b in buttons if OptCb.__prefix__ + ":" in (b.callback_data or "")]
        assert len(option_buttons) == len(spec.options)
        texts = [b.text for b in buttons]
        assert tr(lang, "btn_back") in texts and tr(lang, "btn_cancel") in texts
        for i, option in enumerate(spec.options):
            _, values_kb = screens.option_values(lang, catalog, draft, i)
            marked = [b.text for b in _buttons(values_kb) if b.text.startswith("✅")]
            if option.kind == "choice":
                assert marked == ["✅ " + keyboards.value_text(lang, option.default, option)]


def test_price_follows_options():
    catalog = Catalog()
    draft = {"d": 1, "model": "kling_26_t2v", "opts": {**catalog.defaults("kling_26_t2v")}}
    cheap = screens.options("en", catalog, draft)[0]
    draft["opts"]["duration"] = "10"
    dear = screens.options("en", catalog, draft)[0]
    assert "Price: 25⭐" in cheap and "Price: 50⭐" in dear


def test_picker_buttons_show_name_and_price():
    catalog = Catalog()
    _, markup = screens.picker("en", catalog, Job.CREATE_IMAGE)
    texts = [b.text for b in _buttons(markup)]
    assert "Seedream 4.5 · 8⭐" in texts and "Nano Banana 2 · 8⭐" in texts
    assert all("Kling" not in t and "Edit" not in t for t in texts)


def test_card_shows_shortfall_and_topup_when_balance_is_short():
    catalog = Catalog()
    draft = {"d": 1, "model": "seedream_45_t2i", "opts": catalog.defaults("seedream_45_t2i"),
             "prompt": "a cat"}
    text, markup = screens.card("ru", catalog, draft, balance=3)
    assert "Сгенерировать · 8⭐" in [b.text for b in _buttons(markup)]
    assert "Пополнить" in " ".join(b.text for b in _buttons(markup))
    assert "хотя бы на 5⭐" in text
    text, markup = screens.card("en", catalog, draft, balance=30)
    assert "Top up" not in " ".join(b.text for b in _buttons(markup))


def test_static_keyboards_are_built_once_per_language_and_arguments():
    """Cached markups are shared between replies: one per language and arguments."""
    from bot.services.accounts import Pack

    assert keyboards.main_menu("en") is keyboards.main_menu("en")
    assert keyboards.main_menu("ru") is not keyboards.main_menu("en")
    assert [b.text for b in keyboards.main_menu("ru").inline_keyboard[0]] == [
        tr("ru", "job_create_image"), tr("ru", "job_edit_photo")]
    assert keyboards.step_kb("en", 4) is keyboards.step_kb("en", 4)
    assert keyboards.step_kb("en", 5) != keyboards.step_kb("en", 4)  # the draft is in the data
    packs = [Pack(stars=50, credits=60), Pack(stars=100, credits=130)]
    assert keyboards.topup_kb("en", packs) is keyboards.topup_kb("en", list(packs))
    assert keyboards.topup_kb("en", packs[:1]) != keyboards.topup_kb("en", packs)
    catalog = Catalog()
    pairs = [(m, catalog.base_price(m.key)) for m in catalog.models()]
    assert keyboards.model_picker("en", pairs) is keyboards.model_picker("en", iter(pairs))
    cheaper = [(m, 1) for m, _ in pairs]
    assert keyboards.model_picker("en", cheaper) != keyboards.model_picker("en", pairs)
