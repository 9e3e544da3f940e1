"""`python -m bench [--db sqlite|postgres] [--repeat N] [--only NAME] [--pending N] [--json]`"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .context import Context
from .measures import MEASURES
from .procs import CHILDREN
from .report import Figure, failed, median_of


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite",
                   help="postgres = Postgres + Redis FSM + Redis shared limiters")
    p.add_argument("--repeat", type=int, default=3, help="runs per measure; figures are medians")
    p.add_argument("--only", choices=sorted(MEASURES), action="append",
                   help="run only this measure (repeatable)")
    p.add_argument("--pending", type=int, default=10_000, help="generations pending in the polling measure")
    p.add_argument("--users", type=int, default=1000, help="the updates measure's crowd")
    p.add_argument("--chats", type=int, default=200, help="chats in the create/delivery/callback measures")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of lines")
    p.add_argument("--keep", action="store_true", help="keep the runs' directories (logs)")
    return p


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "aiogram": version("aiogram"), "platform": platform.platform()}


async def run_measure(name: str, ctx: Context, repeat: int) -> list[Figure]:
    runs = []
    for i in range(repeat):
        started = time.monotonic()
        try:
            figures = await MEASURES[name].run(ctx)
        except Exception as exc:  # a broken measure is reported, the others still run
            ctx.say(f"# {name} run {i + 1} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
            figures = [failed(name, f"{type(exc).__name__}: {str(exc)[:200]}")]
        ctx.say(f"# {name} run {i + 1}/{repeat} took {time.monotonic() - started:.0f} s")
        runs.append(figures)
    return median_of(_fill_failed_runs(name, runs))


def _fill_failed_runs(name: str, runs: list[list[Figure]]) -> list[list[Figure]]:
    """A run that crashed has one figure named after the measure; it fails every figure the
    other runs produced, so no median silently leaves that run out."""
    crashed = [r for r in runs if len(r) == 1 and r[0].name == name and r[0].error is not None]
    whole = [r for r in runs if r not in crashed]
    if not crashed or not whole:
        return runs
    shapes = {f.name: f for r in whole for f in r}
    return whole + [[failed(n, c[0].error or "failed", f.goal) for n, f in shapes.items()] for c in crashed]


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="kiebot-bench-"))
    quiet = args.json
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if quiet else \
        (lambda text: print(text, flush=True))
    ctx = Context(workdir, db=args.db, users=args.users, chats=args.chats, pending=args.pending, say=say)
    info = machine()
    if not quiet:
        print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
              f"aiogram {info['aiogram']}")
        print(f"db: {args.db}; medians of {args.repeat} run(s); work dir {workdir}", flush=True)
    results: dict[str, list[Figure]] = {}
    try:
        for name in args.only or list(MEASURES):
            results[name] = figures = await run_measure(name, ctx, args.repeat)
            if not quiet:
                print(f"== {name}")
                for fig in figures:
                    print(fig.line(), flush=True)
    finally:
        CHILDREN.kill_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"machine": info, "db": args.db, "repeat": args.repeat,
            "measures": {name: [f.as_json() for f in figs] for name, figs in results.items()}}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.repeat < 1 or args.pending < 1 or args.users < 1 or args.chats < 2:
        print("--repeat, --pending and --users must be ≥ 1, --chats ≥ 2", file=sys.stderr)
        return 2
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop every child.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        report = asyncio.run(amain(args))
    except KeyboardInterrupt:
        CHILDREN.kill_all()
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report, indent=2))
    verdicts = [f["verdict"] for figs in report["measures"].values() for f in figs]
    return 1 if "FAIL" in verdicts else 0
