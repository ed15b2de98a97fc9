"""Search over closed conversations (the workplace's "closed" view): by number, name and words, on a real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.core.conversation import Turn
from handoff import HandoffDesk, Outcome, Reason, TicketRequest
from handoff.search import ConversationSearch


async def _closed(desk: HandoffDesk, chat_id: int, name: str, *said: Turn) -> str:
    opened = await desk.open(TicketRequest(
        chat_id=chat_id, user_id=chat_id, customer_name=name, lang="ru", reason=Reason.ASKED,
        question=said[0].text if said else "",
    ))
    for turn in said:
        await desk.append_turn(opened.ticket.id, turn)
    await desk.close(opened.ticket.id, Outcome.RESOLVED, closed_by="agent:1")
    return opened.ticket.id


async def test_closed_conversations_are_found_by_number_name_and_words_in_any_form(redis: aioredis.Redis) -> None:
    desk = HandoffDesk(redis)
    search = ConversationSearch(redis, desk)
    parcel = await _closed(desk, 1, "Анна Петрова",
                           Turn("customer", "text", "Где моя посылка? Трек не обновляется"),
                           Turn("bot", "answer", "Статья: как вернуть деньги за заказ"),
                           Turn("agent", "text", "Посылка задержана на таможне"))
    refund = await _closed(desk, 2, "John Smith", Turn("customer", "text", "I want a refund for my order 48213"))
    later = await _closed(desk, 3, "Мария", Turn("customer", "text", "Посылки всё нет, трек стоит"))
    for ticket_id in (parcel, refund, later):
        ticket = await desk.get(ticket_id)
        assert ticket is not None
        await search.ticket_closed(ticket)

    assert await search.search("посылку") == [later, parcel]  # another form of the word; newest first
    assert await search.search("посылка таможне") == [parcel]  # every word must be there
    assert await search.search("анна") == [parcel]  # the customer's name
    for number in (parcel, parcel[1:], f"#{parcel[1:]}", f"№{parcel[1:]}"):  # its number
        assert await search.search(number) == [parcel]
    assert await search.search("48213") == [refund]  # a number said in the conversation
    assert await search.search("refunds") == [refund]
    assert await search.search("вернуть деньги") == []  # the bot's article text is not what was said
    assert await search.search("посылка refund") == []
    assert await search.search("   ") == []


async def test_indexing_is_once_and_catches_up_on_what_closed_unseen(redis: aioredis.Redis) -> None:
    desk = HandoffDesk(redis)
    search = ConversationSearch(redis, desk)
    seen = await _closed(desk, 1, "Олена", Turn("customer", "text", "Не приходит код подтверждения"))
    ticket = await desk.get(seen)
    assert ticket is not None
    assert await search.index(ticket)
    assert not await search.index(ticket)  # a second process, or the same close handled again
    # Closed while no process indexed it (a crash in between, or before the index existed); one still open.
    unseen = await _closed(desk, 2, "Пётр", Turn("customer", "text", "Код подтверждения не пришёл"))
    await desk.open(TicketRequest(chat_id=3, user_id=3, customer_name="Open", lang="ru",
                                  reason=Reason.ASKED, question="код подтверждения"))
    assert await search.search("код") == [seen]

    assert await search.catch_up() == 1
    assert await search.catch_up() == 0
    assert await search.search("кода подтверждения") == [unseen, seen]  # each once, the open one not at all
