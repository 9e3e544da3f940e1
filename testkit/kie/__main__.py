"""`python -m testkit.kie [--host H] [--port N] [--api-key K] [--hmac-key K]`

Runs the emulator until SIGINT/SIGTERM, printing its base URL first. `--walkthrough` instead starts
it on a free port, creates a Seedream task, polls it to success, downloads the PNG and prints
each step (the `make demo` stand-in until the full demo exists).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import struct
import sys
import tempfile
from pathlib import Path

import httpx

from .faults import StateDelays
from .server import KieEmulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m testkit.kie", description="Local KIE.ai emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8077)
    p.add_argument("--api-key", default="test-key")
    p.add_argument("--hmac-key", default=None)
    p.add_argument("--delay", type=float, default=0.2, help="seconds in each of waiting/queuing/generating")
    p.add_argument("--credits", type=float, default=1000.0)
    p.add_argument("--missing-field-code", type=int, choices=(500, 422), default=500)
    p.add_argument("--mirror-http-status", action="store_true", help="set HTTP status = body code")
    p.add_argument("--walkthrough", action="store_true", help="run a scripted Seedream task and exit")
    return p


def _emulator(args: argparse.Namespace) -> KieEmulator:
    return KieEmulator(
        args.api_key, hmac_key=args.hmac_key, delays=StateDelays(args.delay, args.delay, args.delay),
        credits=args.credits, missing_field_code=args.missing_field_code,
        mirror_http_status=args.mirror_http_status,
    )


async def _serve(args: argparse.Namespace) -> int:
    emulator = _emulator(args)
    await emulator.start(args.host, args.port)
    print(f"KIE emulator listening on {emulator.base_url} (files under {emulator.files_url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
    return 0


async def walkthrough(args: argparse.Namespace, out_dir: Path | None = None) -> int:
    emulator = _emulator(args)
    await emulator.start(args.host, 0)
    say = lambda text: print(text, flush=True)  # noqa: E731
    try:
        say(f"1. emulator up at {emulator.base_url}")
        headers = {"Authorization": f"Bearer {args.api_key}"}
        async with httpx.AsyncClient(base_url=emulator.market_url, headers=headers, timeout=10) as http:
            body = {"model": "seedream/4.5-text-to-image",
                    "input": {"prompt": "a lighthouse at dawn", "aspect_ratio": "16:9", "quality": "basic"}}
            created = (await http.post("/api/v1/jobs/createTask", json=body)).json()
            say(f"2. createTask -> {json.dumps(created)}")
            if created.get("code") != 200:
                return 1
            task_id = created["data"]["taskId"]
            for attempt in range(1, 200):
                record = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()
                state = record.get("data", {}).get("state") if record.get("code") == 200 else record.get("msg")
                say(f"3.{attempt} recordInfo -> state={state}")
                if state in ("success", "fail"):
                    break
                await asyncio.sleep(max(args.delay / 2, 0.15))  # stays under 10 recordInfo/s
            if state != "success":
                return 1
            url = json.loads(record["data"]["resultJson"])["resultUrls"][0]
            response = await http.get(url)
            width, height = struct.unpack(">II", response.content[16:24])
            target = (out_dir or Path(tempfile.mkdtemp(prefix="kie-walkthrough-"))) / f"{task_id}.png"
            target.write_bytes(response.content)
            say(f"4. downloaded {url} -> {len(response.content)} bytes, PNG {width}x{height}, saved to {target}")
            credit = (await http.get("/api/v1/chat/credit")).json()
            say(f"5. credit -> {credit['data']} credits left")
        return 0
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(walkthrough(args) if args.walkthrough else _serve(args))
    except OSError as exc:
        print(f"emulator failed to start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
