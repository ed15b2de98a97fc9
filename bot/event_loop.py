"""The event loop every command of Zabota runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_on_uvloop"]

T = TypeVar("T")


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` on uvloop where it is installed (everywhere but Windows): the same asyncio, with the loop's own
    scheduling and sockets in C, which is what a busy bot spends much of its time in; else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
