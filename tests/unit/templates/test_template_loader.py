"""The photo templates' data file: the packaged one loads and makes sense, and every kind of
broken edit stops with one message naming the file, the template and the field."""

from __future__ import annotations

import shutil

import pytest

from bot.config import SettingsError, load_settings
from bot.templates import DATA_FILE, EXAMPLES_DIR, TemplateError, load_templates
from kie_client.catalog import Catalog

GOOD = """
[[template]]
key = "t1"
name = { en = "One", ru = "Один" }
description = { en = "First", ru = "Первый" }
model = "nano_banana_2_edit"
ratio = "3:4"
example = "sticker.png"
prompt = "Make {subject} a sticker"
"""


def _write(tmp_path, text: str):
    (tmp_path / "examples").mkdir(exist_ok=True)
    shutil.copy(EXAMPLES_DIR / "sticker.png", tmp_path / "examples" / "sticker.png")
    path = tmp_path / "templates.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_templates_load_and_are_sellable():
    templates = load_templates()
    catalog = Catalog()
    assert len(templates) >= 8 and len({t.key for t in templates}) == len(templates)
    assert {t.photos for t in templates} == {1, 2}
    for t in templates:
        spec = catalog.get(t.model)
        assert spec.image_input.max_count >= t.photos and t.name["ru"] and t.description["en"]
        assert (EXAMPLES_DIR / t.example).stat().st_size < 64 * 1024
        options = catalog.normalise_options(t.model, t.options())  # the ratio is the model's
        catalog.validate_prompt(t.model, t.render_prompt())
        assert "{" not in t.render_prompt()
        price = t.price if t.price is not None else catalog.price(t.model, options)
        assert 1 <= price <= 100
    assert [t.order for t in templates] == sorted(t.order for t in templates)


def test_placeholders_follow_the_number_of_photos(tmp_path):
    one = load_templates(_write(tmp_path, GOOD))[0]
    assert one.render_prompt() == "Make the person in the photo a sticker"
    two = load_templates(_write(tmp_path, GOOD.replace('model =', 'photos = 2\nmodel =')
                                .replace("{subject} a sticker", "{subject} stickers ({photo1}, {photo2})")))[0]
    assert "the two people" in two.render_prompt() and "(the first image, the second image)" in two.render_prompt()


@pytest.mark.parametrize("change, message", [
    (("nano_banana_2_edit", "nano_banana_9"), "templates.toml: t1: model: 'nano_banana_9' is not a catalog model"),
    (("nano_banana_2_edit", "seedream_45_t2i"), "templates.toml: t1: model: 'seedream_45_t2i' is not an image edit model"),
    (('"3:4"', '"5:7"'), "templates.toml: t1: ratio: '5:7' is not one of"),
    (("{subject}", "{face}"), "templates.toml: t1: prompt: unknown placeholder {face}"),
    (("{subject}", "{photo2}"), "templates.toml: t1: prompt: unknown placeholder {photo2}"),
    (("{subject}", "{subject"), "templates.toml: t1: prompt:"),
    ((', ru = "Один"', ""), "templates.toml: t1: name: ru is required"),
    (('"sticker.png"', '"nope.png"'), "templates.toml: t1: example: 'nope.png' not found"),
    (('"sticker.png"', '"../sticker.png"'), "templates.toml: t1: example: must be a .png or .jpg"),
    (('ratio = "3:4"', 'ratio = "3:4"\nprice = 0'), "templates.toml: t1: price: must be a whole number"),
    (('ratio = "3:4"', 'ratio = "3:4"\nphotos = 3'), "templates.toml: t1: photos: must be 1 or 2"),
    (('ratio = "3:4"', 'ratio = "3:4"\ncolour = "red"'), "templates.toml: t1: colour: unknown field"),
    (('key = "t1"', 'key = "T 1"'), "templates.toml: T 1: key: must be 1-24"),
    (('prompt = "Make {subject} a sticker"', ""), "templates.toml: t1: prompt: is required"),
    (('[[template]]', '[[templat]]'), "templates.toml: templat: unknown table"),
    (('key = "t1"', 'key = "t1'), "templates.toml: not a readable TOML file"),
])
def test_a_broken_file_names_file_template_and_field(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(TemplateError) as caught:
        load_templates(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_key_used_twice_is_refused(tmp_path):
    with pytest.raises(TemplateError, match="templates.toml: t1: key: used twice"):
        load_templates(_write(tmp_path, GOOD + GOOD))


def test_a_broken_file_stops_the_settings_with_one_line(tmp_path, monkeypatch):
    path = _write(tmp_path, GOOD.replace("nano_banana_2_edit", "nano_banana_9"))
    for name, value in {"BOT_TOKEN": "123:abc", "KIE_API_KEY": "k", "KIE_CALLBACK_SECRET": "s" * 20,
                        "TEMPLATES_FILE": str(path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.lines == [
        "TEMPLATES_FILE: templates.toml: t1: model: 'nano_banana_9' is not a catalog model"]


def test_the_default_file_is_the_packaged_one():
    assert DATA_FILE.name == "templates.toml" and DATA_FILE.is_file()
