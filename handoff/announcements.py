"""New tickets announced to the agents on shift, each with a Take button; once the ticket is taken, given or
closed, the buttons are removed from every agent's chat, so nobody taps a ticket that is gone."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.core.redis_values import texts
from bot.core.texts import Texts
from handoff import keys
from handoff.card import ContextCard, short, who
from handoff.desk import HandoffDesk
from handoff.ports import StaffButton, StaffChannel
from handoff.roster import Roster
from handoff.tickets import Ticket, TicketState

__all__ = ["Announcements"]

_KEEP_SECONDS = 7 * 24 * 3600


class Announcements:
    """Sends a waiting ticket to the agents on shift and remembers where, to retire the buttons later."""

    def __init__(
        self, redis: aioredis.Redis, desk: HandoffDesk, staff: StaffChannel, roster: Roster, card: ContextCard
    ) -> None:
        self._redis = redis
        self._desk = desk
        self._staff = staff
        self._roster = roster
        self._card = card
        self._texts: Texts = card.texts

    async def announce(self, ticket: Ticket) -> None:
        """A waiting ticket to each agent on shift with a Take button (none once it is taken or given)."""
        current = await self._desk.get(ticket.id)
        if current is None or current.state is not TicketState.WAITING:
            return
        for agent_id in await self._desk.shifts.on_shift():
            lang = self._texts.lang(await self._roster.language(agent_id))
            take = StaffButton(self._texts.get(lang, "btn_take", ticket=ticket.id), "take", ticket.id)
            text = self._texts.get(
                lang,
                "new_ticket",
                ticket=ticket.id,
                name=who(ticket),
                lang=ticket.lang,
                reason=self._card.reason(ticket, lang),
                frustration=self._card.frustration(ticket, lang),
                question=short(ticket.question or "—", 300),
            )
            message_id = await self._staff.send(agent_id, text, ((take,),))
            if message_id is None:
                continue
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(keys.announcements(ticket.id), f"{agent_id}:{message_id}")
                pipe.expire(keys.announcements(ticket.id), _KEEP_SECONDS)
                await pipe.execute()

    async def retire(self, ticket: Ticket) -> None:
        """The Take buttons of a ticket that is no longer waiting are removed everywhere."""
        for item in texts(await self._redis.lrange(keys.announcements(ticket.id), 0, -1)):
            chat, message = item.split(":")
            await self._staff.remove_buttons(int(chat), int(message))
        await self._redis.delete(keys.announcements(ticket.id))
