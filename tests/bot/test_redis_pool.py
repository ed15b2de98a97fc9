"""The bot's Redis connections (real redis-server): a burst larger than the pool waits for a connection, never fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.redis_server import connect_redis


async def test_a_burst_larger_than_the_pool_waits_for_free_connections_and_loses_no_command(
    clean_redis: str, tmp_path: Path
) -> None:
    client, _ = await connect_redis(clean_redis, tmp_path, max_connections=3)
    try:
        # 3 commands hold every connection for a moment; 200 more arrive meanwhile and must wait, not fail.
        slow = [client.blpop(["nothing-comes"], timeout=0.3) for _ in range(3)]
        quick = [client.incr("counted") for _ in range(200)]
        results = await asyncio.gather(*slow, *quick)

        assert results[:3] == [None, None, None]
        assert sorted(results[3:]) == list(range(1, 201))  # each command ran once
        assert await client.get("counted") == "200"
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 3  # never more than allowed
    finally:
        await client.aclose()


async def test_a_command_that_cannot_get_a_connection_in_time_says_so(clean_redis: str, tmp_path: Path) -> None:
    client, _ = await connect_redis(clean_redis, tmp_path, max_connections=1, wait_seconds=0.2)
    try:
        held = asyncio.ensure_future(client.blpop(["nothing-comes"], timeout=1))
        await asyncio.sleep(0.05)
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.get("anything")
        assert await held is None
        assert await client.get("anything") is None  # the connection is free again and serves the next command
    finally:
        await client.aclose()
