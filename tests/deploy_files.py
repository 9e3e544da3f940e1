"""Readers for the deploy files (Dockerfile, deploy/compose.yaml, deploy/kiebot.service,
deploy/Caddyfile), shared by the unit tests of their shape and the e2e test that runs the
image's command and healthcheck."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
SYSTEMD_UNIT = ROOT / "deploy" / "kiebot.service"
CADDYFILE = ROOT / "deploy" / "Caddyfile"


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                values[key] = value
        return values


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=args.split()[0]))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """`["a", "b"]` of CMD / HEALTHCHECK ... CMD (the shell form is not used here)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def healthcheck(stage: Stage) -> tuple[dict[str, str], list[str]]:
    args = stage.last("HEALTHCHECK")
    assert args is not None, "no HEALTHCHECK"
    options_part, _, command = args.partition(" CMD ")
    options = dict(re.findall(r"--([\w-]+)=(\S+)", options_part))
    return options, exec_form(command.strip())


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def systemd_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string(SYSTEMD_UNIT.read_text())
    return parser
