"""REDIS_URL=redis+sentinel://...: the bot follows the master through a failover (real redis-server and sentinel)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.redis_server import connect_redis, redis_server_binary
from handoff import HandoffDesk, Reason, TicketRequest

pytestmark = pytest.mark.slow  # waits out a Sentinel failover


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """A master, a replica and one sentinel watching them as "zabota", all on loopback."""
    binary = redis_server_binary()
    master, replica, sentinel = free_port(), free_port(), free_port()
    processes = []
    for name, port, extra in (("master", master, []), ("replica", replica, ["--replicaof", "127.0.0.1", str(master)])):
        folder = tmp_path / name
        folder.mkdir()
        processes.append(subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
             "--appendonly", "yes", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor zabota 127.0.0.1 {master} 1\n"
        "sentinel down-after-milliseconds zabota 1000\nsentinel failover-timeout zabota 5000\n"
    )
    processes.append(subprocess.Popen([binary, str(config), "--sentinel"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield master, replica, sentinel
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


async def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if await condition():
                return
        except (OSError, aioredis.RedisError):
            pass
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_tickets_survive_a_sentinel_failover(sentinel_group: tuple[int, int, int], tmp_path: Path) -> None:
    _master, replica, sentinel_port = sentinel_group
    sentinel = aioredis.Redis(port=sentinel_port, decode_responses=True)
    replica_client = aioredis.Redis(port=replica, decode_responses=True)

    async def replica_in_sync() -> bool:
        info = await replica_client.info("replication")
        return info.get("master_link_status") == "up"

    async def sentinel_knows_replica() -> bool:
        return len(await sentinel.execute_command("SENTINEL", "REPLICAS", "zabota")) == 1

    await wait_for(replica_in_sync)
    await wait_for(sentinel_knows_replica)

    client, embedded = await connect_redis(f"redis+sentinel://127.0.0.1:{sentinel_port}/zabota", tmp_path)
    assert embedded is None
    desk = HandoffDesk(client)
    opened = await desk.open(TicketRequest(chat_id=42, user_id=42, customer_name="Анна", lang="ru",
                                           reason=Reason.ASKED, question="Где мой заказ?"))
    await client.execute_command("WAIT", 1, 5000)  # the replica has the ticket before the master goes away

    async def failover() -> bool:  # refused ("NOGOODSLAVE") until the sentinel has polled the replica
        return bool(await sentinel.execute_command("SENTINEL", "FAILOVER", "zabota"))

    await wait_for(failover)

    async def replica_promoted() -> bool:
        address = await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "zabota")
        return int(address[1]) == replica

    await wait_for(replica_promoted)

    async def taken() -> bool:
        return (await desk.take(opened.ticket.id, 7001, "Ольга")).ok

    await wait_for(taken)  # the same client, now talking to the new master
    ticket = await desk.require(opened.ticket.id)
    assert ticket.agent_name == "Ольга" and ticket.question == "Где мой заказ?"
    assert (await replica_client.info("replication"))["role"] == "master"
    for connection in (client, sentinel, replica_client):
        await connection.aclose()
