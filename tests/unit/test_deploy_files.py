"""The deploy files hold together without Docker, systemd or Caddy: the compose file parses
with the services, volumes and healthchecks README promises and settings the bot accepts; the
image is slim, unprivileged, checked on /healthz and installs every package; the systemd unit
and the Caddy example agree with the CLI's exit statuses and the server's routes. (The image's
command and healthcheck are run for real in tests/e2e/test_deploy_image.py.)"""

from __future__ import annotations

import re
import tomllib
from urllib.parse import urlsplit

from bot.config import Settings, load_settings
from bot.server import WEBHOOK_PATH
from kiebot.cli import EXIT_CONFIG

from tests.deploy_files import (
    CADDYFILE,
    COMPOSE,
    ROOT,
    compose,
    dockerfile_stages,
    exec_form,
    healthcheck,
    systemd_unit,
)

REQUIRED = {"BOT_TOKEN": "123456:AAF-deploy-test", "KIE_API_KEY": "kie-deploy-test",
            "KIE_CALLBACK_SECRET": "deploy-callback-secret-0123"}
# What a stop may need: an in-flight createTask's answer (KIE_TIMEOUT_SECONDS + 5 s).
STOP_NEEDS_S = Settings.model_fields["kie_timeout_seconds"].default + 5


def seconds(text: str) -> float:
    value = re.fullmatch(r"(\d+)(s|m)?", str(text).strip())
    assert value, text
    return int(value.group(1)) * (60 if value.group(2) == "m" else 1)


# -- Dockerfile ---------------------------------------------------------------------------------

def test_image_is_slim_unprivileged_and_checked_on_healthz():
    stages = dockerfile_stages()
    assert all(stage.base.endswith("-slim") for stage in stages)
    final = stages[-1]
    assert final.last("USER") not in (None, "root", "0")
    assert exec_form(final.last("CMD")) == ["kiebot", "run"]
    options, command = healthcheck(final)
    assert "/healthz" in command[-1] and seconds(options["timeout"]) < seconds(options["interval"])
    env = final.env()
    assert env["SERVER_HOST"] == "0.0.0.0"  # a container must listen beyond its loopback
    assert "SERVER_PORT" not in env  # else it would hide a platform's PORT
    volumes = exec_form(final.last("VOLUME"))
    assert env["MEDIA_DIR"] in volumes and "/app/data" in volumes
    assert final.last("WORKDIR") == "/app"  # data/kiebot.sqlite3 lands in the /app/data volume


def test_image_copies_every_package_pip_installs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    build = dockerfile_stages()[0]
    copied = {args.split()[0] for args in build.all("COPY")}
    assert packages <= copied
    assert project["project"]["readme"] in " ".join(build.all("COPY"))


# -- compose ------------------------------------------------------------------------------------

def test_compose_has_bot_postgres_redis_with_volumes_and_healthchecks():
    spec = compose()
    services = spec["services"]
    assert set(services) == {"bot", "postgres", "redis"}
    assert {"data", "media", "postgres", "redis"} <= set(spec["volumes"])
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service["restart"] == "unless-stopped", name
    bot = services["bot"]
    assert {dep: c["condition"] for dep, c in bot["depends_on"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy"}
    mounts = dict(volume.split(":")[:2] for volume in bot["volumes"])
    assert mounts["data"] == "/app/data" and mounts["media"] == bot["environment"]["MEDIA_DIR"]
    assert "/var/lib/postgresql/data" in services["postgres"]["volumes"][0]
    assert all(port.startswith("127.0.0.1:") for port in bot["ports"])  # the proxy fronts it
    assert seconds(bot["stop_grace_period"]) >= STOP_NEEDS_S
    # The compose check is the image's own, the one tests/e2e runs against a live bot.
    assert bot["healthcheck"]["test"][1:] == healthcheck(dockerfile_stages()[-1])[1]


def test_compose_paths_and_settings_are_ones_the_bot_accepts():
    spec = compose()
    bot = spec["services"]["bot"]
    assert (COMPOSE.parent / bot["build"]["context"] / bot["build"]["dockerfile"]).resolve() \
        == (ROOT / "Dockerfile").resolve()
    assert (COMPOSE.parent / bot["env_file"]).resolve() == (ROOT / ".env").resolve()
    env = {k: str(v) for k, v in bot["environment"].items()}
    env["DATABASE_URL"] = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", "pw", env["DATABASE_URL"])
    database = urlsplit(env["DATABASE_URL"])
    postgres = spec["services"]["postgres"]["environment"]
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.path.strip("/")) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_DB"])
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    settings = load_settings(_env_file=None, **REQUIRED, **env)
    assert settings.server_port == int(bot["ports"][0].rsplit(":", 1)[1])


# -- systemd ------------------------------------------------------------------------------------

def test_systemd_unit_reads_an_environment_file_from_a_fixed_directory():
    unit = systemd_unit()
    service = unit["Service"]
    workdir = service["WorkingDirectory"]
    assert workdir.startswith("/") and service["EnvironmentFile"].startswith("/")
    assert service["ExecStart"] == f"{workdir}/.venv/bin/kiebot run"  # the Makefile's venv
    assert str(EXIT_CONFIG) in service["RestartPreventExitStatus"].split()
    assert service["Restart"] == "on-failure"
    assert seconds(service["TimeoutStopSec"]) >= STOP_NEEDS_S
    assert service["ReadWritePaths"] == f"{workdir}/data"  # SQLite and data/media live there
    assert unit["Install"]["WantedBy"] == "multi-user.target"


# -- Caddy --------------------------------------------------------------------------------------

def test_caddy_routes_exactly_the_public_paths_to_the_bot():
    text = CADDYFILE.read_text()
    matched = re.findall(r"@\w+\s+path\s+(\S+)", text)
    assert matched == [WEBHOOK_PATH, "/kie/callback/*", "/media/*"]
    default_port = Settings.model_fields["server_port"].default or 8080
    assert set(re.findall(r"reverse_proxy\s+(\S+)", text)) == {f"127.0.0.1:{default_port}"}
    assert re.search(r"handle\s*\{\s*respond 404", text)  # /healthz, /readyz… stay private
