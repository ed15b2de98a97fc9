"""The hand-off desk on a real Redis: the queue's order, atomic taking, releasing, closing, estimates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.core.texts import CUSTOMER_LOCALES, Texts
from handoff import HandoffDesk, Outcome, Reason, TicketRequest, TicketState, WorkingHours
from handoff.desk import TicketNotFound
from handoff.durations import format_wait_estimate
from tests.conftest import Clock


def request(chat_id: int, reason: Reason = Reason.ASKED, frustration: tuple[str, ...] = ()) -> TicketRequest:
    return TicketRequest(chat_id=chat_id, user_id=chat_id, customer_name=f"C{chat_id}", lang="ru", reason=reason,
                         question="где мой заказ", frustration=frustration)


async def test_two_agents_taking_one_ticket_at_once_get_exactly_one_owner(clean_redis: str) -> None:
    clients = [aioredis.Redis.from_url(clean_redis, decode_responses=True) for _ in range(2)]
    desks = [HandoffDesk(client) for client in clients]
    try:
        for round_number in range(100):
            opened = await desks[0].open(request(10_000 + round_number))
            first, second = await asyncio.gather(
                desks[0].take(opened.ticket.id, 1, "Анна"), desks[1].take(opened.ticket.id, 2, "Борис")
            )
            assert [first.ok, second.ok].count(True) == 1, round_number
            _winner, loser = (first, second) if first.ok else (second, first)
            owner = await desks[0].get(opened.ticket.id)
            assert owner is not None and owner.state is TicketState.ASSIGNED
            assert owner.agent_id == (1 if first.ok else 2)
            assert loser.reason == "taken" and loser.holder_id == owner.agent_id
            assert loser.holder_name == owner.agent_name
            await desks[0].close(opened.ticket.id, Outcome.RESOLVED, "test")
    finally:
        for client in clients:
            await client.aclose()


async def test_the_queue_serves_frustrated_and_repeat_customers_first_then_by_waiting_time(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    desk = HandoffDesk(redis, clock=clock)
    assert await desk.queue.longest_wait() == 0
    calm = await desk.open(request(1))
    clock.now += 60
    later = await desk.open(request(2))
    clock.now += 60
    angry = await desk.open(request(3, Reason.FRUSTRATION, ("insult",)))
    assert [t.id for t in await desk.waiting()] == [angry.ticket.id, calm.ticket.id, later.ticket.id]
    assert await desk.queue.position(calm.ticket.id) == 2
    clock.now += 5
    assert await desk.queue.longest_wait() == 125  # the calm customer, though the angry one is served first

    await desk.close(calm.ticket.id, Outcome.CUSTOMER_RESOLVED, "customer")
    clock.now += 60
    returning = await desk.open(request(1))  # the same customer again, within a week: a repeat contact
    assert returning.ticket.repeat_contact and returning.ticket.priority == 1
    assert [t.id for t in await desk.waiting()] == [angry.ticket.id, returning.ticket.id, later.ticket.id]


async def test_a_customer_has_one_open_ticket(redis) -> None:  # type: ignore[no-untyped-def]
    desk = HandoffDesk(redis)
    first, second = await asyncio.gather(desk.open(request(5)), desk.open(request(5)))
    assert first.ticket.id == second.ticket.id
    assert [first.created, second.created].count(True) == 1
    assert await desk.queue.length() == 1


async def test_release_and_going_offline_put_tickets_back_in_their_place(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    desk = HandoffDesk(redis, clock=clock)
    old = await desk.open(request(1))
    clock.now += 100
    new = await desk.open(request(2))
    await desk.shifts.begin(7)
    taken = await desk.take_next(7, "Анна")
    assert taken is not None and taken.ok and taken.ticket is not None and taken.ticket.id == old.ticket.id
    assert await desk.queue.position(new.ticket.id) == 1

    await desk.shifts.end(7)
    released = await desk.release_all(7)
    assert [t.id for t in released] == [old.ticket.id]
    assert [t.id for t in await desk.waiting()] == [old.ticket.id, new.ticket.id]  # he waited longer
    assert await desk.agent_tickets(7) == []
    with pytest.raises(TicketNotFound):
        await desk.release(old.ticket.id, 7)


async def test_an_agent_holds_at_most_the_configured_number_of_tickets(redis) -> None:  # type: ignore[no-untyped-def]
    desk = HandoffDesk(redis, max_tickets_per_agent=2)
    ids = [(await desk.open(request(chat))).ticket.id for chat in (1, 2, 3)]
    assert (await desk.take(ids[0], 7, "A")).ok and (await desk.take(ids[1], 7, "A")).ok
    full = await desk.take(ids[2], 7, "A")
    assert not full.ok and full.reason == "full"
    assert await desk.queue.position(ids[2]) == 1


async def test_closing_frees_the_customer_and_keeps_his_history(redis) -> None:  # type: ignore[no-untyped-def]
    desk = HandoffDesk(redis)
    opened = await desk.open(request(9))
    await desk.take(opened.ticket.id, 7, "Анна")
    closed = await desk.close(opened.ticket.id, Outcome.RESOLVED, "agent:7")
    assert closed.state is TicketState.CLOSED and closed.outcome == "resolved"
    assert await desk.open_ticket_of(9) is None
    assert await desk.agent_tickets(7) == []
    assert [t.id for t in await desk.customer_history(9)] == [opened.ticket.id]
    with pytest.raises(TicketNotFound):
        await desk.close(opened.ticket.id, Outcome.RESOLVED, "agent:7")


async def test_transfer_moves_the_ticket_between_agents(redis) -> None:  # type: ignore[no-untyped-def]
    desk = HandoffDesk(redis)
    opened = await desk.open(request(4))
    await desk.take(opened.ticket.id, 7, "Анна")
    moved = await desk.transfer(opened.ticket.id, 8, "Борис", from_agent=7)
    assert (moved.agent_id, moved.agent_name) == (8, "Борис")
    assert await desk.agent_tickets(7) == [] and [t.id for t in await desk.agent_tickets(8)] == [opened.ticket.id]
    with pytest.raises(TicketNotFound):
        await desk.transfer(opened.ticket.id, 9, "Вера", from_agent=7)


async def test_the_wait_estimate_follows_recent_waits_and_agents_online(redis) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    desk = HandoffDesk(redis, default_wait=600, clock=clock)
    assert await desk.queue.estimate_wait(1) == 600  # no history yet: the configured default
    for chat in range(3):
        opened = await desk.open(request(100 + chat))
        clock.now += 120
        await desk.take(opened.ticket.id, 7, "A")
    assert await desk.queue.estimate_wait(1) == 120
    assert await desk.queue.estimate_wait(3) == 360
    await desk.shifts.begin(7)
    await desk.shifts.begin(8)
    assert await desk.queue.estimate_wait(4) == 240


def test_working_hours_know_when_agents_are_back() -> None:
    hours = WorkingHours.parse("Mon-Fri 09:00-18:00; Sat 10:00-14:00", "Europe/Moscow")
    friday_evening = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 19:30 in Moscow
    assert not hours.is_open(friday_evening)
    back = hours.next_opening(friday_evening)
    assert back is not None and (back.weekday(), back.hour) == (5, 10)
    assert hours.is_open(datetime(2026, 11, 23, 7, 0, tzinfo=UTC))  # Monday 10:00 in Moscow
    with pytest.raises(ValueError, match="not like 'Mon-Fri 09:00-18:00'"):
        WorkingHours.parse("weekdays 9 to 6", "Europe/Moscow")


def test_a_waiting_customer_is_told_his_wait_the_same_way_wherever_it_is_said() -> None:
    """The queued message, its updates and a transfer all say it alike: in 5-minute steps, in hours when long."""
    texts = Texts.load(CUSTOMER_LOCALES)
    assert format_wait_estimate(30, texts, "ru") == "около 5 мин"  # never "0 minutes"
    assert format_wait_estimate(7 * 60, texts, "ru") == "около 10 мин"
    assert format_wait_estimate(85 * 60, texts, "en") == "about 85 min"
    assert format_wait_estimate(100 * 60, texts, "uk") == "близько 2 год"  # not "about 100 min"
