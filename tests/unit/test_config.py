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


def test_blank_is_unset_for_every_variable(env):
    # `.env.example` ships `KIE_API_KEY=` and `SERVER_PORT=`-style blanks: unset, not "".
    env.setenv("KIE_API_KEY", "")
    env.setenv("SERVER_PORT", "")
    env.setenv("PRICE_OVERRIDES", "")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert info.value.lines == ["KIE_API_KEY: is required but not set"]
    env.setenv("KIE_API_KEY", "sk-kie-secret-key-value")
    s = load_settings()
    assert s.server_port == 8080 and s.price_overrides == {}


def test_port_comes_from_server_port_then_the_platforms_port(env):
    env.setenv("PORT", "10000")
    s = load_settings()
    assert (s.server_port, s.port_variable) == (10000, "PORT")
    env.setenv("SERVER_PORT", "8081")
    s = load_settings()
    assert (s.server_port, s.port_variable) == (8081, "SERVER_PORT")
    assert "10000" not in repr(s)  # PORT is folded into server_port, not a setting of its own


@pytest.mark.parametrize("url", [
    "https://bot.example.com", "https://bot.example.com:8443", "https://bot.example.com:88/",
])
def test_webhook_urls_telegram_accepts(env, url):
    env.setenv("PUBLIC_BASE_URL", url)
    assert load_settings().public_base_url == url.rstrip("/")


@pytest.mark.parametrize("url, reason", [
    ("http://bot.example.com", "https://"),
    ("https://bot.example.com:8080", "port 8080"),
    ("https://localhost", "loopback or private"),
    ("https://10.0.0.5", "loopback or private"),
    ("bot.example.com", "http(s)://"),
])
def test_webhook_urls_telegram_refuses(env, url, reason):
    env.setenv("PUBLIC_BASE_URL", url)
    with pytest.raises(SettingsError) as info:
        load_settings()
    (line,) = info.value.lines
    assert line.startswith("PUBLIC_BASE_URL: ") and reason in line


def test_a_self_hosted_bot_api_server_may_call_any_url(env):
    # A local telegram-bot-api server (and the test kit's fake) calls plain http on any port.
    env.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081")
    env.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:9000")
    assert load_settings().webhook_mode


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "rediss://:pw@redis.example.com:6380", "unix:///run/redis.sock",
])
def test_redis_urls_accepted(env, url):
    env.setenv("REDIS_URL", url)
    assert load_settings().redis_url == url


@pytest.mark.parametrize("url", [
    "notaurl", "http://127.0.0.1:6379", "redis://:pw-secret@/0", "redis://host:port/0",
    "redis://h/x",
])
def test_redis_urls_refused_without_echoing_them(env, url):
    env.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError) as info:
        load_settings()
    (line,) = info.value.lines
    assert line.startswith("REDIS_URL: ") and url not in line


def test_json_settings_name_the_problem_not_the_value(env):
    env.setenv("PRICE_OVERRIDES", '{"seedream_45_t2i": 10, "dall_e": 3}')
    env.setenv("TOPUP_PACKS", '[{"stars": 50, "credits": 50}, {"stars": 50, "credits": 60}]')
    with pytest.raises(SettingsError) as info:
        load_settings()
    prices, packs = info.value.lines
    assert prices.startswith("PRICE_OVERRIDES: unknown model 'dall_e'; known models: ")
    assert packs == "TOPUP_PACKS: two packs have the same price in Stars"
    env.setenv("PRICE_OVERRIDES", '{"seedream_45_t2i": 10,}')
    env.setenv("TOPUP_PACKS", "[]")
    with pytest.raises(SettingsError) as info:
        load_settings()
    prices, packs = info.value.lines
    assert prices.startswith("PRICE_OVERRIDES: is not valid JSON (")
    assert packs.startswith("TOPUP_PACKS: needs at least one pack")


def test_one_line_per_variable_even_with_several_problems_in_it(env):
    env.setenv("TOPUP_PACKS", '[{"stars": 0, "credits": 1}, {"stars": 5}]')
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert info.value.lines == [
        "TOPUP_PACKS: [0].stars: Input should be greater than 0; [1].credits: "
        "is required but not set"]


def test_env_example_lists_every_setting_and_parses_to_the_defaults(env):
    """.env.example, as shipped, names every variable (PORT only in a comment: platforms set
    it) and, with the three required values filled, gives exactly the documented defaults."""
    from pathlib import Path

    from dotenv import dotenv_values

    example = Path(__file__).resolve().parents[2] / ".env.example"
    values = dotenv_values(example)
    names = {(f.alias or n) for n, f in Settings.model_fields.items()} - {"PORT"}
    assert names <= set(values), names - set(values)
    assert set(values) <= names
    for key in REQUIRED:
        env.delenv(key)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=example)
    assert info.value.lines == [f"{key}: is required but not set" for key in REQUIRED]
    filled = {**{k: v for k, v in values.items() if v}, **REQUIRED}
    assert load_settings(_env_file=None, **filled) == load_settings(_env_file=None, **REQUIRED)
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
