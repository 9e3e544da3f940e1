"""`kiebot run` refuses every bad or missing setting with one line per variable and exit 2,
before anything heavy is imported; a port already taken, a Telegram that refuses the token or
cannot be reached and a database the driver refuses end the same way (exit 2, 4, 3), each in
one line with no traceback and no secret. Real child processes, real sockets, the fake
Telegram on loopback and the real Postgres."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bot.config import Settings
from testkit.telegram import FakeTelegram
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:AAF-config-test-token-secret"
GOOD = {
    "BOT_TOKEN": TOKEN,
    "KIE_API_KEY": "kie-config-test-key-secret",
    "KIE_CALLBACK_SECRET": "callback-config-test-secret-0123",
}
SECRETS = (TOKEN.partition(":")[2], GOOD["KIE_API_KEY"], GOOD["KIE_CALLBACK_SECRET"])


def clean_env(**values: str) -> dict[str, str]:
    """The test's environment without any kiebot variable, plus `values`."""
    names = {(f.validation_alias if isinstance(f.validation_alias, str) else f.alias or n).upper()
             for n, f in Settings.model_fields.items()}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names | {"PORT"}}
    return {**env, **values}


def kiebot(args: list[str], cwd: Path, env: dict[str, str],
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiebot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


REFUSAL = re.compile(r"^(?:[A-Z][A-Z0-9_]*|backup|\.env): ")


def refusal_lines(stderr: str) -> list[str]:
    """What the operator is told: `NAME: reason` lines, not the log records around them (a
    record's message may run over several lines, as Alembic's migration titles do)."""
    return [line for line in stderr.splitlines() if REFUSAL.match(line)]


def assert_refused(proc: subprocess.CompletedProcess[str], code: int, *variables: str) -> None:
    lines = refusal_lines(proc.stderr)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [line.split(":", 1)[0] for line in lines] == list(variables), lines
    if " level=" not in proc.stderr:  # refused before logging began: nothing else was printed
        assert proc.stderr.splitlines() == lines
    for secret in SECRETS:
        assert secret not in proc.stderr + proc.stdout


# -- settings -----------------------------------------------------------------------------------

CASES = {
    "blank KIE key": ({"KIE_API_KEY": ""}, ["KIE_API_KEY"]),
    "spaces only": ({"BOT_TOKEN": "   "}, ["BOT_TOKEN"]),
    "redis not a URL": ({"REDIS_URL": "notaurl"}, ["REDIS_URL"]),
    "redis db not a number": ({"REDIS_URL": "redis://127.0.0.1:6379/zero"}, ["REDIS_URL"]),
    "unknown model price": ({"PRICE_OVERRIDES": '{"no_such_model": 5}'}, ["PRICE_OVERRIDES"]),
    "price JSON broken": ({"PRICE_OVERRIDES": '{"seedream_45_t2i": 5'}, ["PRICE_OVERRIDES"]),
    "packs JSON broken": ({"TOPUP_PACKS": "[{stars: 5}]"}, ["TOPUP_PACKS"]),
    "packs not a list": ({"TOPUP_PACKS": '{"stars": 5, "credits": 5}'}, ["TOPUP_PACKS"]),
    "webhook over http": ({"PUBLIC_BASE_URL": "http://bot.example.com"}, ["PUBLIC_BASE_URL"]),
    "webhook port 8080": ({"PUBLIC_BASE_URL": "https://bot.example.com:8080"},
                          ["PUBLIC_BASE_URL"]),
    "webhook on loopback": ({"PUBLIC_BASE_URL": "https://127.0.0.1"}, ["PUBLIC_BASE_URL"]),
    "PORT not a number": ({"PORT": "eighty"}, ["PORT"]),
    "database scheme": ({"DATABASE_URL": "mysql://u:pw-secret@db/x"}, ["DATABASE_URL"]),
    "supabase incomplete": ({"MEDIA_STORE": "supabase"},
                            ["SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"]),
    "several at once": ({"KIE_API_KEY": "", "REDIS_URL": "notaurl", "SERVER_PORT": "70000",
                         "TOPUP_PACKS": '[{"stars": 0, "credits": 1}, {"stars": 5}]'},
                        ["KIE_API_KEY", "SERVER_PORT", "REDIS_URL", "TOPUP_PACKS"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_bad_setting_is_one_line_naming_it_and_exit_2(case, tmp_path):
    values, variables = CASES[case]
    proc = kiebot(["run"], tmp_path, clean_env(**{**GOOD, **values}))
    assert_refused(proc, 2, *variables)
    assert "pw-secret" not in proc.stderr


def test_env_example_as_copied_names_the_three_required_variables_fast(tmp_path):
    shutil.copyfile(ROOT / ".env.example", tmp_path / ".env")
    started = time.monotonic()
    proc = kiebot(["run"], tmp_path, clean_env())
    elapsed = time.monotonic() - started
    assert_refused(proc, 2, "BOT_TOKEN", "KIE_API_KEY", "KIE_CALLBACK_SECRET")
    assert all(line.endswith("is required but not set") for line in refusal_lines(proc.stderr))
    assert elapsed < 2.0, f"a missing setting took {elapsed:.2f} s to report"


def test_settings_are_checked_before_aiogram_or_sqlalchemy_is_imported(tmp_path):
    # A module set to None in sys.modules cannot be imported: had the CLI imported aiogram,
    # SQLAlchemy or the handlers before checking the settings, this would end in ImportError.
    code = ("import sys\n"
            "for name in ('aiogram', 'sqlalchemy', 'aiohttp', 'handlers', 'kiebot.app'):\n"
            "    sys.modules[name] = None\n"
            "from kiebot.cli import main\n"
            "sys.exit(main(['run']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          env=clean_env(**{**GOOD, "REDIS_URL": "notaurl"}),
                          capture_output=True, text=True, timeout=60)
    assert_refused(proc, 2, "REDIS_URL")


def test_version_and_run_help_name_the_required_variables_and_the_env_file(tmp_path):
    version = kiebot(["--version"], tmp_path, clean_env())
    assert version.returncode == 0 and version.stdout.startswith("kiebot 0.")
    help_ = kiebot(["run", "--help"], tmp_path, clean_env())
    assert help_.returncode == 0
    for name in ("BOT_TOKEN", "KIE_API_KEY", "KIE_CALLBACK_SECRET", "PORT", ".env.example"):
        assert name in help_.stdout
    assert str(tmp_path / ".env") in help_.stdout.replace("\n", "")


# -- the port -----------------------------------------------------------------------------------

@pytest.mark.parametrize("variable", ["SERVER_PORT", "PORT"])
def test_port_in_use_is_one_line_naming_the_variable_that_chose_it(variable, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = kiebot(["run"], tmp_path, clean_env(**GOOD, SERVER_HOST="127.0.0.1",
                                                   **{variable: str(port)}))
    assert_refused(proc, 2, variable)
    assert f"port {port}" in proc.stderr and "already in use" in proc.stderr


# -- Telegram at start --------------------------------------------------------------------------

async def run_async(env: dict[str, str], cwd: Path, timeout: float = 60):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiebot", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return subprocess.CompletedProcess(["kiebot", "run"], proc.returncode, out.decode(),
                                       err.decode())


def test_unreachable_telegram_is_retried_with_backoff_then_one_line_exit_4(tmp_path):
    closed = free_port()  # nothing listens there
    env = clean_env(**GOOD, TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{closed}",
                    START_RETRY_SECONDS="2", SERVER_PORT=str(free_port()),
                    DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    proc = kiebot(["run"], tmp_path, env)
    assert_refused(proc, 4, "TELEGRAM_API_BASE_URL")
    retries = [line for line in proc.stderr.splitlines() if "telegram unreachable at start" in line]
    assert len(retries) >= 2, proc.stderr  # 0.5 s, 1 s, … within the 2 s allowed
    assert "retry_in=0.5s" in retries[0] and "retry_in=1.0s" in retries[1]
    assert f"127.0.0.1:{closed}" in refusal_lines(proc.stderr)[0]


async def test_a_token_telegram_refuses_is_named_without_retrying(tmp_path):
    async with FakeTelegram("999:another-bot-entirely") as telegram:
        env = clean_env(**GOOD, TELEGRAM_API_BASE_URL=telegram.base_url,
                        SERVER_PORT=str(free_port()),
                        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
        proc = await run_async(env, tmp_path)
    assert_refused(proc, 2, "BOT_TOKEN")
    assert "401" in proc.stderr and "telegram unreachable" not in proc.stderr


# -- the database -------------------------------------------------------------------------------

@pytest.mark.postgres
async def test_database_errors_carry_the_drivers_reason_with_the_password_masked(tmp_path, pg_url):
    from sqlalchemy.engine import make_url

    missing = f"kiebot_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(pg_url).set(drivername="postgresql", password="hunter2-db-secret",
                               database=missing).render_as_string(hide_password=False)
    async with FakeTelegram(TOKEN) as telegram:
        env = clean_env(**GOOD, TELEGRAM_API_BASE_URL=telegram.base_url, DATABASE_URL=url,
                        SERVER_PORT=str(free_port()))
        proc = await run_async(env, tmp_path)
    assert_refused(proc, 3, "DATABASE_URL")
    assert f'database "{missing}" does not exist' in proc.stderr
    assert "hunter2-db-secret" not in proc.stderr + proc.stdout and "***" in proc.stderr


async def test_sigterm_while_telegram_is_retried_stops_at_once_with_status_0(tmp_path):
    from tests.conftest import wait_until

    env = clean_env(**GOOD, TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
                    START_RETRY_SECONDS="600", SERVER_PORT=str(free_port()),
                    DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    log = tmp_path / "kiebot.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kiebot", "run", cwd=tmp_path, env=env, stdout=out,
            stderr=asyncio.subprocess.STDOUT)
        try:
            await wait_until(lambda: b"telegram unreachable at start" in log.read_bytes(),
                             timeout=60)
            proc.terminate()
            status = await asyncio.wait_for(proc.wait(), 30)  # not the 600 s of retries
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert status == 0, log.read_text()
    assert "Traceback" not in log.read_text()


async def test_a_webhook_telegram_refuses_is_one_line_naming_public_base_url(tmp_path):
    """A Bot API stand-in on loopback that knows the token but refuses the webhook as Telegram
    does for a host it cannot resolve (the settings cannot know that in advance)."""
    from aiohttp import web

    refusal = "Bad Request: bad webhook: Failed to resolve host: Name or service not known"
    seen: list[str] = []

    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        seen.append(method)
        if method == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 123456, "is_bot": True, "first_name": "Bot", "username": "a_bot"}})
        if method == "setWebhook":
            return web.json_response({"ok": False, "error_code": 400, "description": refusal},
                                     status=400)
        if method == "getStarTransactions":
            return web.json_response({"ok": True, "result": {"transactions": []}})
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        env = clean_env(**GOOD, TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{port}",
                        PUBLIC_BASE_URL="https://bot.invalid", SERVER_PORT=str(free_port()),
                        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
        proc = await run_async(env, tmp_path)
    finally:
        await runner.cleanup()
    assert "setWebhook" in seen
    assert_refused(proc, 2, "PUBLIC_BASE_URL")
    (line,) = refusal_lines(proc.stderr)
    assert line == ("PUBLIC_BASE_URL: Telegram refused the webhook at "
                    f"https://bot.invalid/tg/webhook: {refusal}")
