"""`python -m testkit.telegram --host 127.0.0.1 --port 8081 --token 123456:TEST`"""

from __future__ import annotations

import argparse
import asyncio
import os

from .server import FakeTelegram


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m testkit.telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=os.environ.get("FAKE_TELEGRAM_TOKEN", "123456:TEST"),
                        help="the bot token the fake accepts (default: $FAKE_TELEGRAM_TOKEN or 123456:TEST)")
    parser.add_argument("--no-flood-control", action="store_true")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(token=args.token, flood_control=not args.no_flood_control)
    await fake.start(host=args.host, port=args.port)
    print(f"fake Telegram Bot API at {fake.base_url} (control API under {fake.base_url}/_fake/)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    main()
