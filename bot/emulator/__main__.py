"""``python -m bot.emulator``: runs the Telegram Bot API emulator standalone until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.emulator._emulator import DEFAULT_TOKEN, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    print(f"Telegram Bot API emulator on http://{args.host}:{args.port} for token {args.token}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
