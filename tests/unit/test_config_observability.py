"""LOG_FORMAT, METRICS_*, SENTRY_*: defaults, blank = unset, bad values named without echoing
secrets, and every secret among them masked by the log redaction."""

from __future__ import annotations

import pytest

from bot.config import SettingsError, load_settings
from kiebot.app import secrets_of
from tests.unit.test_config import env  # noqa: F401  (the fixture)

DSN = "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42"


def test_defaults_are_text_logs_open_metrics_and_no_sentry(env):  # noqa: F811
    s = load_settings()
    assert (s.log_format, s.metrics_enabled, s.metrics_token, s.sentry_dsn) == (
        "text", True, None, None)


def test_values_are_read_and_blank_means_unset(env):  # noqa: F811
    env.setenv("LOG_FORMAT", " JSON ")
    env.setenv("METRICS_TOKEN", "metrics-token-0123456789")
    env.setenv("SENTRY_DSN", DSN)
    env.setenv("SENTRY_ENVIRONMENT", "")
    env.setenv("METRICS_ENABLED", "false")
    s = load_settings()
    assert s.log_format == "json" and not s.metrics_enabled
    assert s.sentry_environment is None
    masked = secrets_of(s)
    assert "metrics-token-0123456789" in masked and DSN in masked
    assert "0123456789abcdef0123456789abcdef" in masked  # the DSN's key alone
    assert DSN not in repr(s) and "metrics-token" not in repr(s)
    env.setenv("METRICS_TOKEN", "  ")
    env.setenv("SENTRY_DSN", "")
    s = load_settings()
    assert s.metrics_token is None and s.sentry_dsn is None


@pytest.mark.parametrize("name, value", [
    ("LOG_FORMAT", "xml"),
    ("METRICS_TOKEN", "short"),
    ("METRICS_TOKEN", "has a space in it, sixteen+"),
    ("SENTRY_DSN", "not-a-dsn-at-all-but-secret"),
    ("SENTRY_DSN", "https://o1.ingest.sentry.io/42"),  # no key
    ("SENTRY_DSN", "https://key@o1.ingest.sentry.io/"),  # no project
])
def test_bad_values_name_the_variable_and_never_echo_it(env, name, value):  # noqa: F811
    env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert [line for line in info.value.lines if line.startswith(f"{name}: ")], info.value.lines
    if name != "LOG_FORMAT":
        assert value not in text


def test_db_transaction_pooler_is_auto_by_default_and_named_when_bad(env):  # noqa: F811
    assert load_settings().transaction_pooler is None
    for value, expected in ((" TRUE ", True), ("false", False), ("auto", None), ("", None)):
        env.setenv("DB_TRANSACTION_POOLER", value)
        assert load_settings().transaction_pooler is expected
    env.setenv("DB_TRANSACTION_POOLER", "maybe")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert [line for line in info.value.lines if line.startswith("DB_TRANSACTION_POOLER: ")] == [
        "DB_TRANSACTION_POOLER: Input should be 'auto', 'true' or 'false'"]
