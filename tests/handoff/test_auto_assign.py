"""HANDOFF_AUTO_ASSIGN: waiting tickets given to agents on shift without a Take, within each agent's limit."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.slow
async def test_a_given_ticket_nobody_answers_goes_back_and_on_to_a_colleague(
    tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str
) -> None:
    async with running_app(
        tmp_path, prepared, encoder, clean_redis, auto_assign=True, max_tickets_per_agent=1, accept_minutes=0.05
    ) as running:
        await running.say(AGENT, "/online")
        await running.say(SECOND, "/online")
        customer = EmulatedUser(id=9500, first_name="Клиент", language_code="ru")

        await running.say(customer, "позовите оператора", count=2)  # queued, then "a colleague joined"
        given = await running.app.desk.open_ticket_of(customer.id)
        assert given is not None and given.state is TicketState.ASSIGNED and given.agent_id == AGENT_ID

        # Ольга does not answer within three seconds: the ticket goes back, the customer is told, Катя gets it.
        card, notice = await running.emulator.wait_for_bot_messages(AGENT_ID, 2, timeout=20)
        assert (card.text or "").startswith("📋 ")
        assert "возвращён в очередь" in (notice.text or "") and given.id in (notice.text or "")
        requeued, joined = await running.emulator.wait_for_bot_messages(customer.id, 2, timeout=20)
        assert "не может ответить" in (requeued.text or "")
        assert "подключился сотрудник" in (joined.text or "")
        again = await running.app.desk.get(given.id)
        assert again is not None and again.state is TicketState.ASSIGNED and again.agent_id == SECOND_AGENT_ID

        # Катя answers: the ticket is hers to keep, however long the conversation then takes.
        await running.settle(SECOND_AGENT_ID)
        await running.say(SECOND, "Здравствуйте, смотрю ваш заказ", count=0)
        [reply] = await running.emulator.wait_for_bot_messages(customer.id, 1, timeout=15)
        assert "смотрю ваш заказ" in (reply.text or "")
        await running.settle(customer.id, quiet=6.0)
        kept = await running.app.desk.get(given.id)
        assert kept is not None and kept.state is TicketState.ASSIGNED and kept.agent_id == SECOND_AGENT_ID
        assert len(running.emulator.bot_messages(customer.id)) == 5  # nothing more: not moved again
