"""The channel-neutral dialog driven directly, as any channel drives it: a customer and his words in, neutral
replies (text and buttons) out; a hand-off reaches the desk with the conversation. No channel runs here."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.channels import Channel, chat_id_in
from bot.core.ports import Action, Button, Customer, Reply
from bot.factory import Application, build_application
from kb_index import Encoder
from tests.harness import make_settings

ANNA = Customer(chat_id=1601, user_id=1601, name="Анна", language_code="ru")
OKSANA = Customer(chat_id=1602, user_id=1602, name="Оксана", language_code="uk")
VISITOR = Customer(chat_id=chat_id_in(Channel.WEB, 17), user_id=chat_id_in(Channel.WEB, 17), name="Мария",
                   language_code="ru")  # a customer of the website's widget


@pytest.fixture
async def app(tmp_path: Path, prepared: Path, encoder: Encoder, clean_redis: str) -> AsyncIterator[Application]:
    data = tmp_path / "data"
    shutil.copytree(prepared, data, ignore=shutil.ignore_patterns("redis"))
    application = await build_application(make_settings(data, clean_redis, ""), encoder=encoder, telegram=False)
    yield application
    await application.close()


def buttons(reply: Reply) -> list[Button]:
    return [button for row in reply.buttons for button in row]


def pressed(reply: Reply, action: Action) -> Button:
    return next(button for button in buttons(reply) if button.action is action)


async def test_a_question_gets_the_article_with_did_this_help_on_the_same_reply(app: Application) -> None:
    [answer] = await app.dialog.text(ANNA, "Как отменить заказ?")
    assert answer.text.startswith("<b>Как отменить заказ?</b>") and answer.html
    assert answer.text.endswith("<i>Помог ли этот ответ?</i>")
    assert {button.action for button in buttons(answer)} >= {Action.HELPED, Action.NOT_HELPED}


async def test_a_ukrainian_customer_is_answered_in_ukrainian(app: Application) -> None:
    [answer] = await app.dialog.text(OKSANA, "Як повернути товар, який не підійшов?")
    assert answer.text.endswith("<i>Чи допомогла ця відповідь?</i>")


async def test_two_noes_hand_the_customer_to_a_person_with_what_the_bot_tried(app: Application) -> None:
    [answer] = await app.dialog.text(VISITOR, "как отследить где сейчас моя посылка")
    no = pressed(answer, Action.NOT_HELPED)
    [alternatives] = await app.dialog.button(VISITOR, Action.NOT_HELPED, no.search_id, no.index)
    assert alternatives.text == "Жаль, что не помогло. Возможно, подойдёт одна из этих статей?"
    none = pressed(alternatives, Action.NONE_OF_THESE)

    replies = await app.dialog.button(VISITOR, Action.NONE_OF_THESE, none.search_id, none.index)
    assert any("Передаю ваш вопрос сотруднику" in reply.text for reply in replies)
    ticket = await app.desk.open_ticket_of(VISITOR.chat_id)
    assert ticket is not None and ticket.reason.value == "negative_feedback"
    assert ticket.channel == "web"  # read off his chat id: an agent on any channel serves him
    context = await app.desk.context(ticket.id)
    said = [(turn.kind, turn.text) for turn in context if turn.role == "customer"]
    assert said[0] == ("text", "как отследить где сейчас моя посылка") and ("button", "Ничего из этого") in said
    card = await app.workspace.card.render(ticket, "ru")
    assert "отследить" in card and "не помогло" in card  # the agent reads what the bot showed and what came of it


async def test_a_message_whose_handling_fails_half_way_is_still_in_the_conversation(
    app: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(text: str) -> object:
        raise RuntimeError("the intent model is gone")

    monkeypatch.setattr(app.dialog.intents, "classify_async", broken)
    with pytest.raises(RuntimeError):
        await app.dialog.text(ANNA, "Где мой заказ?")

    said = [(turn.role, turn.text) for turn in await app.dialog.log.recent(ANNA.chat_id)]
    assert said == [("customer", "Где мой заказ?")]  # an agent taking him later reads it
