"""The people of the desk: agents and supervisors added by admins (beside those in the settings), the names
customers see, and who may do what (``AgentDirectory``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.core.redis_values import optional_text
from handoff import keys

__all__ = ["AgentDirectory", "Roster"]


class Roster:
    """Agents and supervisors added by admins, and agents' display names and languages, in Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def set_agent_name(self, agent_id: int, name: str) -> None:
        await self._redis.hset(keys.agent(agent_id), "name", name)

    async def agent_name(self, agent_id: int) -> str:
        return optional_text(await self._redis.hget(keys.agent(agent_id), "name")) or ""

    async def display_name(self, agent_id: int) -> str:
        """The name customers and colleagues see: the one he set, else his id."""
        return await self.agent_name(agent_id) or str(agent_id)

    async def language(self, agent_id: int) -> str | None:
        """The language the agent reads the desk's texts in, as his channel last said (None: never said)."""
        return optional_text(await self._redis.hget(keys.agent(agent_id), "lang"))

    async def set_language(self, agent_id: int, lang: str) -> None:
        await self._redis.hset(keys.agent(agent_id), "lang", lang)

    async def add_agent(self, agent_id: int) -> bool:
        return bool(await self._redis.sadd(keys.AGENTS, str(agent_id)))

    async def remove_agent(self, agent_id: int) -> bool:
        return bool(await self._redis.srem(keys.AGENTS, str(agent_id)))

    async def added_agents(self) -> set[int]:
        return {int(x) for x in await self._redis.smembers(keys.AGENTS)}

    async def is_added_supervisor(self, user_id: int) -> bool:
        return bool(await self._redis.sismember(keys.SUPERVISORS, str(user_id)))

    async def added_as(self, user_id: int) -> tuple[bool, bool]:
        """Whether an admin added ``user_id`` as an agent, as a supervisor, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sismember(keys.AGENTS, str(user_id))
            pipe.sismember(keys.SUPERVISORS, str(user_id))
            agent, supervisor = await pipe.execute()
        return bool(agent), bool(supervisor)

    async def add_supervisor(self, user_id: int) -> bool:
        return bool(await self._redis.sadd(keys.SUPERVISORS, str(user_id)))

    async def remove_supervisor(self, user_id: int) -> bool:
        return bool(await self._redis.srem(keys.SUPERVISORS, str(user_id)))

    async def added_supervisors(self) -> set[int]:
        return {int(x) for x in await self._redis.smembers(keys.SUPERVISORS)}


@dataclass
class AgentDirectory:
    """Who may act as agent, supervisor or admin: configured ids plus agents added by admins (in Redis)."""

    roster: Roster
    agent_ids: frozenset[int]
    supervisor_ids: frozenset[int]
    admin_ids: frozenset[int]

    async def is_agent(self, user_id: int) -> bool:
        if user_id in self.agent_ids or user_id in self.supervisor_ids:
            return True
        return any(await self.roster.added_as(user_id))  # asked for every update: one round trip for both

    async def is_supervisor(self, user_id: int) -> bool:
        return user_id in self.supervisor_ids or await self.roster.is_added_supervisor(user_id)

    async def supervisors(self) -> list[int]:
        """Configured supervisors and those added by admins: who gets alerts."""
        return sorted(set(self.supervisor_ids) | await self.roster.added_supervisors())

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids

    async def is_staff(self, user_id: int) -> bool:
        return self.is_admin(user_id) or await self.is_agent(user_id)

    async def agents(self) -> list[int]:
        return sorted(set(self.agent_ids) | await self.roster.added_agents() | set(await self.supervisors()))
