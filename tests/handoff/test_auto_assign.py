"""HANDOFF_AUTO_ASSIGN: waiting tickets given to agents on shift without a Take, within each agent's limit."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import EmulatedUser
from handoff.tickets import TicketState
from kb_index import Encoder
from tests.harness import AGENT_ID, SECOND_AGENT_ID, labels, running_app

AGENT = EmulatedUser(id=AGENT_ID, first_name="Ольга", language_code="ru")
SECOND = EmulatedUser(id=SECOND_AGENT_ID, first_name="Катя", language_code="ru")


async def test_tickets_go_to_the_least_busy_agent_and_wait_when_everyone_is_full(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    async with running_app(tmp_path, prepared, encoder, clean_redis, auto_assign=True, max_tickets_per_agent=1) as running:
        await running.say(AGENT, "/online")
        await running.say(SECOND, "/online")
        customers = [EmulatedUser(id=9400 + n, first_name=f"Клиент {n}", language_code="ru") for n in range(3)]

        for customer in customers[:2]:
            await running.say(customer, "позовите оператора", count=2)  # queued, then "a colleague joined"
        first = await running.app.desk.open_ticket_of(customers[0].id)
        second = await running.app.desk.open_ticket_of(customers[1].id)
        assert first is not None and second is not None
        assert first.state is TicketState.ASSIGNED and second.state is TicketState.ASSIGNED
        assert {first.agent_id, second.agent_id} == {AGENT_ID, SECOND_AGENT_ID}  # one each: the least busy
        cards = running.emulator.bot_messages(AGENT_ID) + running.emulator.bot_messages(SECOND_AGENT_ID)
        assert sum(1 for m in cards if (m.text or "").startswith("📋 ")) == 2  # the context card, no Take needed
        assert not any("Взять" in " ".join(labels(m)) for m in cards)  # nothing announced for anyone to take

        # Everyone is full: the third waits, and is given out as soon as a ticket closes.
        [queued] = await running.say(customers[2], "позовите оператора")
        assert "в очереди" in (queued.text or "")
        third = await running.app.desk.open_ticket_of(customers[2].id)
        assert third is not None and third.state is TicketState.WAITING
        holder = EmulatedUser(id=first.agent_id, first_name="Ольга", language_code="ru")
        await running.settle(holder.id)  # his card has arrived
        [question] = await running.say(holder, "/close")
        await running.tap(holder, question, "✅ Решён")
        joined = await running.emulator.wait_for_bot_messages(customers[2].id, 1, timeout=15)
        assert "подключился сотрудник" in (joined[-1].text or "")
        third = await running.app.desk.get(third.id)
        assert third is not None and third.state is TicketState.ASSIGNED and third.agent_id == first.agent_id
