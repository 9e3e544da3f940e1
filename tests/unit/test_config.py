"""Settings: fixed variable names, defaults, validation messages that never echo secrets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import Settings, SettingsError, load_settings

REQUIRED = {
    "BOT_TOKEN": "123456:AAF-secret-token-value",
    "KIE_API_KEY": "sk-kie-secret-key-value",
    "KIE_CALLBACK_SECRET": "callback-secret-0123456789abcdef",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    for name in list(Settings.model_fields):
        alias = Settings.model_fields[name].alias or name
        monkeypatch.delenv(alias, raising=False)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_defaults_match_the_documented_ones(env):
    s = load_settings()
    assert s.telegram_api_base_url == "https://api.telegram.org"
    assert (s.server_host, s.server_port) == ("127.0.0.1", 8080)
    assert s.database_url.startswith("sqlite+aiosqlite:///data/")
    assert s.media_store == "local"
    assert s.supabase_bucket == "generations"
    assert s.signup_bonus == 50
    assert s.public_base_url is None and not s.webhook_mode
    assert [(p.stars, p.credits) for p in s.topup_packs] == [(50, 50), (150, 165), (500, 600)]


def test_missing_variables_are_named(env):
    env.delenv("BOT_TOKEN")
    env.delenv("KIE_CALLBACK_SECRET")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "BOT_TOKEN: is required" in text
    assert "KIE_CALLBACK_SECRET: is required" in text
    assert "KIE_API_KEY" not in text


def test_bad_values_are_named_without_echoing_them(env):
    env.setenv("BOT_TOKEN", "not-a-token-but-a-secret")
    env.setenv("SERVER_PORT", "99999")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "BOT_TOKEN" in text and "SERVER_PORT" in text
    assert "not-a-token-but-a-secret" not in text


def test_lists_and_json_settings_parse(env):
    env.setenv("ADMIN_IDS", "11, 22;33")
    env.setenv("PRICE_OVERRIDES", '{"seedream_45_t2i": 10}')
    env.setenv("TOPUP_PACKS", '[{"stars": 10, "credits": 12}]')
    env.setenv("KIE_RESULT_HOSTS", "aiquickdraw.com, 127.0.0.1")
    env.setenv("PUBLIC_BASE_URL", "https://bot.example.com/")
    s = load_settings()
    assert s.admin_ids == [11, 22, 33]
    assert s.price_overrides == {"seedream_45_t2i": 10}
    assert [(p.stars, p.credits) for p in s.topup_packs] == [(10, 12)]
    assert s.kie_result_hosts == ["aiquickdraw.com", "127.0.0.1"]
    assert s.public_base_url == "https://bot.example.com" and s.webhook_mode


def test_supabase_store_needs_its_credentials(env):
    env.setenv("MEDIA_STORE", "supabase")
    with pytest.raises(SettingsError, match="SUPABASE_URL"):
        load_settings()


def test_secrets_never_show_in_repr(env):
    env.setenv("KIE_WEBHOOK_HMAC_KEY", "hmac-key-secret-value")
    s = load_settings()
    shown = repr(s) + str(s)
    for secret in (*REQUIRED.values(), "hmac-key-secret-value"):
        assert secret not in shown
    # The part of the token before ':' is the bot id, which is public; the rest must be hidden.
    assert "AAF-secret" not in shown


def test_url_passwords_are_masked_and_offered_for_redaction(env):
    env.setenv("DATABASE_URL", "postgresql://u:db-pass-secret@db.example.com:5432/postgres")
    env.setenv("REDIS_URL", "redis://:redis-pass-secret@127.0.0.1:6379/0")
    s = load_settings()
    assert "db-pass-secret" not in repr(s) and "redis-pass-secret" not in repr(s)
    assert "postgresql://u:***@db.example.com" in repr(s)
    assert sorted(s.url_passwords()) == ["db-pass-secret", "redis-pass-secret"]
    # The real value is untouched: drivers need it.
    assert s.database_url.endswith("u:db-pass-secret@db.example.com:5432/postgres")


def test_app_redaction_list_includes_url_passwords(env):
    from kiebot.app import secrets_of

    env.setenv("DATABASE_URL", "postgresql://u:db-pass-secret@db.example.com/postgres")
    assert "db-pass-secret" in secrets_of(load_settings())


def test_price_markup_and_catalog_dir(env, tmp_path):
    env.setenv("PRICE_MARKUP", "1.25")
    env.setenv("CATALOG_DIR", "")
    s = load_settings()
    assert s.price_markup == Decimal("1.25") and s.catalog_dir is None
    empty = tmp_path / "models"
    empty.mkdir()
    env.setenv("CATALOG_DIR", str(empty))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "CATALOG_DIR" in str(info.value) and "no model data files" in str(info.value)
    (empty / "toy.toml").write_text("[[model]]\nkey = 'toy'\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="toy.toml: toy: name: is required"):
        load_settings()
    env.setenv("PRICE_MARKUP", "0")
    env.delenv("CATALOG_DIR")
    with pytest.raises(SettingsError, match="PRICE_MARKUP"):
        load_settings()
