"""The Telegram emulator behaves like Telegram to a real aiogram bot, and lets a test act as the bot's customers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.emulator import (
    ButtonNotFoundError,
    EmulatedUser,
    EmulatorTimeoutError,
    FloodLimits,
    InlineButton,
    TelegramEmulator,
    buttons,
)
from bot.telegram.session import BotApiSession

ANNA = EmulatedUser(id=1001, first_name="Anna", username="anna", language_code="ru")
BORIS = EmulatedUser(id=1002, first_name="Boris", language_code="uk")
AGENT = EmulatedUser(id=2001, first_name="Olga")


def make_bot(emulator: TelegramEmulator, token: str | None = None) -> Bot:
    return Bot(token or emulator.token, session=BotApiSession(emulator.base_url))


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(webhook_retry_delay=0.01) as running:
        yield running


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    client = make_bot(emulator)
    yield client
    await client.session.close()


@contextlib.asynccontextmanager
async def polling(emulator: TelegramEmulator, dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    """Runs the dispatcher's long polling for the duration of the block, once it is really polling."""
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        await emulator.wait_until(lambda: emulator.long_polls_waiting > 0, what="the bot to start polling")
        yield
    finally:
        await dp.stop_polling()
        await task


@contextlib.asynccontextmanager
async def web_app(app: web.Application) -> AsyncIterator[str]:
    """Serves ``app`` on a free local port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def yes_no() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Yes", callback_data="answer:yes"),
                InlineKeyboardButton(text="No", callback_data="answer:no"),
            ],
            [InlineKeyboardButton(text="Help centre", url="https://example.com/help")],
        ]
    )


# conversations through long polling


async def test_a_customer_who_writes_gets_the_bots_answer_in_the_same_chat(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"<b>You wrote:</b> {message.text}", parse_mode="HTML")

    async with polling(emulator, dp, bot):
        sent = await emulator.send_message(ANNA, "Where is my order?")
        [reply] = await emulator.wait_for_bot_messages(ANNA.id)

    assert reply.text == "You wrote: Where is my order?"
    assert reply.entities == [{"type": "bold", "offset": 0, "length": 10}]
    assert reply.sent_text == "<b>You wrote:</b> Where is my order?"
    assert reply.message["chat"] == {"id": 1001, "type": "private", "first_name": "Anna", "username": "anna"}
    assert reply.message["from"]["id"] == emulator.bot_id and reply.message["from"]["is_bot"] is True
    assert reply.message_id == sent["message_id"] + 1
    assert [m.from_bot for m in emulator.chat_messages(ANNA.id)] == [False, True]
    assert [r.method for r in emulator.requests][:3] == ["getMe", "getUpdates", "sendMessage"]


async def test_a_button_press_reaches_the_bot_and_its_answer_edits_the_message_in_place(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message(F.text == "/start")
    async def start(message: Message) -> None:
        await message.answer("Did this answer help?", reply_markup=yes_no())

    @dp.callback_query(F.data.startswith("answer:"))
    async def rated(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.answer("Thank you!")
        await query.message.edit_text(f"You said: {query.data}")

    async with polling(emulator, dp, bot):
        await emulator.send_message(ANNA, "/start")
        [question] = await emulator.wait_for_bot_messages(ANNA.id)
        assert buttons(question) == [
            InlineButton("Yes", "answer:yes"),
            InlineButton("No", "answer:no"),
            InlineButton("Help centre", "https://example.com/help"),
        ]
        query = await emulator.press_button(ANNA, question, "Yes")
        answer = await emulator.wait_for_callback_answer(query["id"])
        await emulator.wait_until(lambda: question.edited, what="the question to be edited")

    assert query["data"] == "answer:yes" and query["message"]["message_id"] == question.message_id
    assert answer.text == "Thank you!" and answer.show_alert is False
    assert question.text == "You said: answer:yes"
    assert "reply_markup" not in question.message  # editMessageText without a markup drops the keyboard
    assert question.history[0]["text"] == "Did this answer help?"
    assert question.message["edit_date"] >= question.history[0]["date"]
    assert len(emulator.bot_messages(ANNA.id)) == 1
    start_update = emulator.updates[0]
    assert start_update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]


async def test_pressing_a_button_that_is_not_there_says_which_buttons_there_are(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    await emulator.send_message(ANNA, "hi")
    message = await bot.send_message(ANNA.id, "Rate us", reply_markup=yes_no())

    with pytest.raises(ButtonNotFoundError, match=r"no inline button 'Maybe'.*'Yes' \(answer:yes\)"):
        await emulator.press_button(ANNA, message.message_id, "Maybe")
    with pytest.raises(ButtonNotFoundError, match="url button"):
        await emulator.press_button(ANNA, message.message_id, "Help centre")
    query = await emulator.press_button(ANNA, message.message_id, "answer:no")  # by callback data too
    assert query["data"] == "answer:no"


async def test_a_customer_edit_reaches_the_bot_as_an_edited_message(emulator: TelegramEmulator, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.edited_message()
    async def edited(message: Message) -> None:
        await message.answer(f"Noted the correction: {message.text}")

    async with polling(emulator, dp, bot):
        sent = await emulator.send_message(ANNA, "order 123")
        await emulator.edit_message(ANNA, sent["message_id"], "order 124")
        [reply] = await emulator.wait_for_bot_messages(ANNA.id)

    assert reply.text == "Noted the correction: order 124"
    [original] = [m for m in emulator.chat_messages(ANNA.id) if not m.from_bot]
    assert original.text == "order 124" and original.history[0]["text"] == "order 123"


async def test_a_duplicated_update_reaches_the_handler_twice_with_the_same_id(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    seen: list[int] = []
    dp = Dispatcher()

    @dp.message()
    async def remember(message: Message, event_update: Any) -> None:
        seen.append(event_update.update_id)
        await message.answer("ok")

    async with polling(emulator, dp, bot):
        await emulator.send_message(ANNA, "pay")
        await emulator.wait_for_bot_messages(ANNA.id)
        await emulator.duplicate_last_update()
        await emulator.wait_for_bot_messages(ANNA.id)
        await emulator.send_message(ANNA, "after")
        await emulator.wait_for_bot_messages(ANNA.id)

    assert seen[0] == seen[1] and seen[2] == seen[0] + 1


async def test_waiting_for_a_reply_that_never_comes_fails_with_a_clear_message(emulator: TelegramEmulator) -> None:
    await emulator.send_message(ANNA, "hello?")
    with pytest.raises(EmulatorTimeoutError, match="sent 0 of 1 awaited messages to chat 1001"):
        await emulator.wait_for_bot_messages(ANNA.id, timeout=0.05)


# getUpdates


async def test_get_updates_offset_confirms_and_drops_earlier_updates(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "one")
    await emulator.send_message(BORIS, "two")

    first, second = await bot.get_updates()
    assert [first.message.text, second.message.text] == ["one", "two"]  # type: ignore[union-attr]
    assert len(await bot.get_updates()) == 2  # nothing is confirmed until an offset says so

    [remaining] = await bot.get_updates(offset=first.update_id + 1)
    assert remaining.update_id == second.update_id
    assert await bot.get_updates(offset=second.update_id + 1) == []
    assert emulator.pending_updates == []


async def test_long_polling_answers_as_soon_as_an_update_arrives(emulator: TelegramEmulator, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await emulator.wait_until(lambda: emulator.long_polls_waiting == 1)

    await emulator.send_message(ANNA, "are you there?")
    updates = await asyncio.wait_for(poll, timeout=5)

    assert [u.message.text for u in updates] == ["are you there?"]  # type: ignore[union-attr]


async def test_a_second_poller_terminates_the_first_with_a_conflict(emulator: TelegramEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await emulator.wait_until(lambda: emulator.long_polls_waiting == 1)
    second = asyncio.create_task(bot.get_updates(timeout=30))

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first
    await emulator.send_message(ANNA, "hi")
    assert len(await second) == 1


async def test_allowed_updates_filters_what_the_bot_receives(emulator: TelegramEmulator, bot: Bot) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    await emulator.send_message(ANNA, "ignored")
    assert await bot.get_updates() == []


# Telegram's errors, as aiogram sees them


@pytest.mark.parametrize(
    ("call", "error", "description"),
    [
        (lambda b: b.send_message(ANNA.id, ""), TelegramBadRequest, "Bad Request: message text is empty"),
        (lambda b: b.send_message(ANNA.id, "  \n "), TelegramBadRequest, "Bad Request: message text is empty"),
        (lambda b: b.send_message(ANNA.id, "я" * 4097), TelegramBadRequest, "Bad Request: message is too long"),
        (
            lambda b: b.send_message(
                ANNA.id,
                "Rate",
                # 33 Cyrillic letters are 66 bytes: over the limit though only 33 characters
                reply_markup=InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="д" * 33)]]
                ),
            ),
            TelegramBadRequest,
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (lambda b: b.send_message(424242, "hi"), TelegramBadRequest, "Bad Request: chat not found"),
        (
            lambda b: b.send_message(ANNA.id, "<b>bold</i>", parse_mode="HTML"),
            TelegramBadRequest,
            'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 7, expected "</b>", found "</i>"',
        ),
        (
            lambda b: b.send_message(ANNA.id, "<b>bold", parse_mode="HTML"),
            TelegramBadRequest,
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            lambda b: b.send_message(ANNA.id, "2 < 3 <br>", parse_mode="HTML"),
            TelegramBadRequest,
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        ),
        (
            lambda b: b.send_message(ANNA.id, "<div>x</div>", parse_mode="HTML"),
            TelegramBadRequest,
            'Bad Request: can\'t parse entities: Unsupported start tag "div" at byte offset 0',
        ),
        (
            lambda b: b.send_message(ANNA.id, "Price: 5.00!", parse_mode="MarkdownV2"),
            TelegramBadRequest,
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'",
        ),
        (
            lambda b: b.send_message(ANNA.id, "x", parse_mode="BBCode"),
            TelegramBadRequest,
            "Bad Request: unsupported parse_mode",
        ),
        (
            lambda b: b.answer_callback_query("777"),
            TelegramBadRequest,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        ),
        (
            lambda b: b.edit_message_text("new", chat_id=ANNA.id, message_id=999),
            TelegramBadRequest,
            "Bad Request: message to edit not found",
        ),
        (lambda b: b.delete_message(ANNA.id, 999), TelegramBadRequest, "Bad Request: message to delete not found"),
        (
            lambda b: b.send_photo(ANNA.id, "no-such-file-id"),
            TelegramBadRequest,
            "Bad Request: wrong file identifier/HTTP URL specified",
        ),
        (
            lambda b: b.send_chat_action(ANNA.id, "dancing"),
            TelegramBadRequest,
            "Bad Request: wrong parameter action in request",
        ),
        (
            lambda b: b.set_my_commands([BotCommand(command="Help", description="Help")]),
            TelegramBadRequest,
            "Bad Request: BOT_COMMAND_INVALID",
        ),
    ],
)
async def test_a_bad_request_fails_with_telegrams_exception_and_description(
    emulator: TelegramEmulator,
    bot: Bot,
    call: Callable[[Bot], Awaitable[Any]],
    error: type[Exception],
    description: str,
) -> None:
    await emulator.send_message(ANNA, "hi")

    with pytest.raises(error) as raised:
        await call(bot)

    assert raised.value.message == description  # type: ignore[attr-defined]
    assert emulator.requests[-1].status == 400 and emulator.requests[-1].description == description
    assert emulator.bot_messages(ANNA.id) == []


async def test_limits_count_what_the_customer_sees_and_bytes_of_callback_data(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    await emulator.send_message(ANNA, "hi")
    longest = "<b>" + "я" * 4096 + "</b>"  # the tags are not part of the 4096 characters
    widest = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="ok", callback_data="д" * 32)]])

    assert len((await bot.send_message(ANNA.id, longest, parse_mode="HTML")).text or "") == 4096
    sent = await bot.send_message(ANNA.id, "64 bytes of data", reply_markup=widest)
    assert sent.reply_markup is not None and sent.reply_markup.inline_keyboard[0][0].callback_data == "д" * 32


async def test_html_that_telegram_accepts_becomes_text_and_entities(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    html = (
        '<b>Order</b> &lt;123&gt; &amp; <a href="https://example.com/o?id=1&amp;x=2">track</a> 😀 '
        '<tg-spoiler>code</tg-spoiler> <pre><code class="language-python">print(1)</code></pre>'
    )

    message = await bot.send_message(ANNA.id, html, parse_mode="HTML")

    assert message.text == "Order <123> & track 😀 code print(1)"
    assert [e.model_dump(exclude_none=True) for e in message.entities or []] == [
        {"type": "bold", "offset": 0, "length": 5},
        {"type": "text_link", "offset": 14, "length": 5, "url": "https://example.com/o?id=1&x=2"},
        {"type": "spoiler", "offset": 23, "length": 4},  # the emoji counts as two UTF-16 units
        {"type": "pre", "offset": 28, "length": 8, "language": "python"},
    ]


async def test_markdown_v2_is_parsed_like_telegram_does(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")

    message = await bot.send_message(
        ANNA.id, r"*Total:* 5\.00 _EUR_ [pay](https://example.com/pay)", parse_mode="MarkdownV2"
    )

    assert message.text == "Total: 5.00 EUR pay"
    assert [(e.type, e.offset, e.length) for e in message.entities or []] == [
        ("bold", 0, 6),
        ("italic", 12, 3),
        ("text_link", 16, 3),
    ]


async def test_a_customer_who_blocked_the_bot_cannot_be_written_to(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "bye")
    await emulator.block_bot(ANNA)

    with pytest.raises(TelegramForbiddenError) as raised:
        await bot.send_message(ANNA.id, "Please rate our service")
    assert raised.value.message == "Forbidden: bot was blocked by the user"
    update = emulator.updates[-1]["my_chat_member"]
    assert (update["old_chat_member"]["status"], update["new_chat_member"]["status"]) == ("member", "kicked")

    await emulator.unblock_bot(ANNA)
    assert (await bot.send_message(ANNA.id, "Welcome back")).text == "Welcome back"


async def test_editing_without_a_change_is_refused_as_not_modified(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    sent = await bot.send_message(ANNA.id, "Your ticket is open", reply_markup=yes_no())

    with pytest.raises(TelegramBadRequest) as raised:
        await bot.edit_message_text(
            "Your ticket is open", chat_id=ANNA.id, message_id=sent.message_id, reply_markup=yes_no()
        )
    assert raised.value.message.startswith("Bad Request: message is not modified: specified new message content")

    edited = await bot.edit_message_reply_markup(chat_id=ANNA.id, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.reply_markup is None and edited.edit_date is not None
    [record] = emulator.bot_messages(ANNA.id)
    assert record.text == "Your ticket is open" and len(record.history) == 1


async def test_wrong_token_and_unknown_method_are_401_and_404(emulator: TelegramEmulator) -> None:
    stranger = make_bot(emulator, token="999:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emulator.base_url}/bot999:WRONG/getMe") as response:
            assert (response.status, await response.json()) == (
                401,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
        async with http.post(f"{emulator.base_url}/bot{emulator.token}/sendTelepathy") as response:
            assert (response.status, await response.json()) == (
                404,
                {"ok": False, "error_code": 404, "description": "Not Found"},
            )


async def test_curl_style_json_form_and_query_requests_work(emulator: TelegramEmulator) -> None:
    await emulator.send_message(ANNA, "hi")
    api = f"{emulator.base_url}/bot{emulator.token}"
    markup = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/sendMessage", json={"chat_id": ANNA.id, "text": "json", "reply_markup": markup}):
            pass
        async with http.post(f"{api}/sendmessage", data={"chat_id": str(ANNA.id), "text": "form"}):
            pass
        async with http.get(f"{api}/getMe") as response:
            me = await response.json()
        async with http.get(f"{api}/sendMessage", params={"chat_id": ANNA.id, "text": ""}) as response:
            empty = (response.status, await response.json())
        upload = aiohttp.FormData({"chat_id": str(ANNA.id), "caption": "scan"})
        upload.add_field("document", b"%PDF", filename="scan.pdf", content_type="application/pdf")
        async with http.post(f"{api}/sendDocument", data=upload) as response:
            document = (await response.json())["result"]["document"]

    assert [m.text for m in emulator.bot_messages(ANNA.id)] == ["json", "form", "scan"]
    assert (document["file_name"], document["mime_type"], document["file_size"]) == ("scan.pdf", "application/pdf", 4)
    assert emulator.bot_messages(ANNA.id)[0].message["reply_markup"] == markup
    assert me["result"]["username"] == "zabota_bot" and me["result"]["id"] == 123456
    assert empty == (400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})


async def test_an_injected_server_error_reaches_the_bot_once(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    emulator.inject_error("sendMessage", 400, "Bad Request: TOPIC_CLOSED")

    with pytest.raises(TelegramBadRequest, match="TOPIC_CLOSED"):
        await bot.send_message(ANNA.id, "first")
    assert (await bot.send_message(ANNA.id, "second")).text == "second"


# flood control


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_flood_control_answers_429_with_retry_after_until_the_window_frees() -> None:
    clock = FakeClock()
    async with TelegramEmulator(flood_limits=FloodLimits(per_chat_burst=2), clock=clock) as emulator:
        bot = make_bot(emulator)
        try:
            await emulator.send_message(ANNA, "hi")
            await bot.send_message(ANNA.id, "1")
            await bot.send_message(ANNA.id, "2")
            with pytest.raises(TelegramRetryAfter) as raised:
                await bot.send_message(ANNA.id, "3")
            assert raised.value.retry_after == 1
            assert raised.value.message.endswith("Original description: Too Many Requests: retry after 1")
            assert (emulator.requests[-1].status, emulator.requests[-1].description) == (
                429,
                "Too Many Requests: retry after 1",
            )
            assert emulator.flood_rejections == 1

            clock.now += 1.0
            await bot.send_message(ANNA.id, "3")
        finally:
            await bot.session.close()
        assert [m.text for m in emulator.bot_messages(ANNA.id)] == ["1", "2", "3"]


async def test_flood_control_limits_the_total_and_each_group() -> None:
    clock = FakeClock()
    limits = FloodLimits(per_chat_burst=100, total_per_second=3, group_per_minute=2)
    async with TelegramEmulator(flood_limits=limits, clock=clock) as emulator:
        agents = emulator.add_group("Agents", [AGENT])
        bot = make_bot(emulator)
        try:
            for user in (ANNA, BORIS, AGENT):
                await emulator.send_message(user, "hi")
                await bot.send_message(user.id, "hello")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(ANNA.id, "one too many this second")

            clock.now += 1.0
            await bot.send_message(agents, "ticket 1")
            clock.now += 1.0
            await bot.send_message(agents, "ticket 2")
            with pytest.raises(TelegramRetryAfter) as raised:
                await bot.send_message(agents, "ticket 3")
            assert raised.value.retry_after == 59  # the first group message leaves the minute window in 59 s
        finally:
            await bot.session.close()
        assert emulator.flood_rejections == 2


async def test_flood_control_is_off_by_default(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    for number in range(40):
        await bot.send_message(ANNA.id, str(number))
    assert emulator.flood_rejections == 0


# webhooks


class WebhookReceiver:
    """A bot's webhook endpoint that fails while it has failures to give, and records what it got."""

    def __init__(self, failures: list[int] | None = None) -> None:
        self.failures = list(failures or [])
        self.received: list[tuple[str | None, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update))
        if self.failures:
            return web.Response(status=self.failures.pop(0))
        return web.json_response({})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app


async def test_webhook_updates_carry_the_secret_and_are_retried_after_a_server_error(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    receiver = WebhookReceiver(failures=[500])
    async with web_app(receiver.app()) as base:
        assert await bot.set_webhook(f"{base}/hook", secret_token="s3cret-token", drop_pending_updates=True)
        await emulator.send_message(ANNA, "first")
        await emulator.send_message(ANNA, "second")
        await emulator.wait_until(lambda: len(receiver.received) == 3 and not emulator.pending_updates)

        info = await bot.get_webhook_info()
        with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()

    texts = [update["message"]["text"] for _, update in receiver.received]
    assert texts == ["first", "first", "second"]  # the failed one again, and the next only after it
    assert {secret for secret, _ in receiver.received} == {"s3cret-token"}
    assert [(a.status, a.error) for a in emulator.webhook_attempts] == [
        (500, "Wrong response from the webhook: 500 Internal Server Error"),
        (200, None),
        (200, None),
    ]
    assert info.url == f"{base}/hook" and info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert await bot.delete_webhook()
    assert emulator.webhook_url is None


async def test_a_webhook_that_cannot_be_reached_keeps_its_updates_for_later(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    async with web_app(web.Application()) as base:
        closed_url = f"{base}/hook"
    await bot.set_webhook(closed_url)
    await emulator.send_message(ANNA, "anyone?")
    await emulator.wait_until(lambda: len(emulator.webhook_attempts) >= 2)

    assert emulator.webhook_attempts[0].status is None
    assert (await bot.get_webhook_info()).last_error_message == "Connection refused"
    await bot.delete_webhook()
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.text == "anyone?"


async def test_a_real_dispatcher_behind_a_webhook_answers_in_its_webhook_reply(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message()
    async def reply_in_webhook_answer(message: Message) -> SendMessage:
        return message.answer(f"Got it: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="t0ken").register(app, path="/hook")
    async with web_app(app) as base:
        await bot.set_webhook(f"{base}/hook", secret_token="t0ken")
        await emulator.send_message(ANNA, "refund please")
        [reply] = await emulator.wait_for_bot_messages(ANNA.id)

    assert reply.text == "Got it: refund please"
    assert emulator.calls("sendMessage")[0].via_webhook_reply is True


async def test_webhook_updates_are_spread_over_several_targets_keeping_each_chat_in_order(
    emulator: TelegramEmulator,
) -> None:
    first, second = WebhookReceiver(), WebhookReceiver()
    async with web_app(first.app()) as first_base, web_app(second.app()) as second_base:
        emulator.set_webhook_targets([f"{first_base}/hook", f"{second_base}/hook"])
        for number in range(3):
            await emulator.send_message(ANNA, f"anna {number}")
            await emulator.send_message(BORIS, f"boris {number}")
        await emulator.wait_until(lambda: len(first.received) + len(second.received) == 6)

    assert len(first.received) == len(second.received) == 3  # taken in turn
    for user in (ANNA, BORIS):
        # Completion order of one chat's deliveries is their sending order: a chat never has two at once.
        delivered = [
            a.update_id
            for a in emulator.webhook_attempts
            if a.update_id in {u["update_id"] for u in emulator.updates if u["message"]["chat"]["id"] == user.id}
        ]
        assert delivered == sorted(delivered) and len(delivered) == 3


# files, copies, commands


async def test_files_go_both_ways_and_can_be_downloaded(emulator: TelegramEmulator, bot: Bot) -> None:
    user_photo = await emulator.send_photo(ANNA, caption="broken item", content=b"JPEGDATA")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.caption == "broken item"
    assert update.message.photo is not None
    downloaded = await bot.download(update.message.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == b"JPEGDATA"
    assert user_photo["photo"][0]["file_id"] == update.message.photo[-1].file_id

    invoice = await bot.send_document(
        ANNA.id,
        BufferedInputFile(b"%PDF invoice", filename="invoice.pdf"),
        caption="<i>Your invoice</i>",
        parse_mode="HTML",
    )
    assert invoice.document is not None and invoice.document.file_name == "invoice.pdf"
    assert invoice.caption == "Your invoice" and invoice.caption_entities is not None
    again = await bot.send_document(ANNA.id, invoice.document.file_id)
    assert again.document is not None and again.document.file_id == invoice.document.file_id
    file = await bot.get_file(invoice.document.file_id)
    assert file.file_path and file.file_path.endswith(".pdf")

    location = await bot.send_location(ANNA.id, latitude=55.75, longitude=37.62)
    assert location.location is not None and location.location.latitude == 55.75


async def test_customer_messages_are_copied_and_forwarded_to_the_agents_group(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    agents = emulator.add_group("Agents", [AGENT])
    question = await emulator.send_message(ANNA, "My parcel is lost")

    copied = await bot.copy_message(agents, from_chat_id=ANNA.id, message_id=question["message_id"])
    forwarded = await bot.forward_message(agents, from_chat_id=ANNA.id, message_id=question["message_id"])
    reply = await bot.send_message(agents, "Ticket #7", reply_parameters=ReplyParameters(message_id=copied.message_id))

    group = emulator.chat_messages(agents)
    assert [m.text for m in group] == ["My parcel is lost", "My parcel is lost", "Ticket #7"]
    assert group[0].message_id == copied.message_id and "forward_origin" not in group[0].message
    assert forwarded.forward_origin is not None and forwarded.forward_origin.sender_user.id == ANNA.id  # type: ignore[union-attr]
    assert reply.reply_to_message is not None and reply.reply_to_message.message_id == copied.message_id
    assert reply.chat.type == "supergroup" and reply.chat.title == "Agents"

    agent_says = await emulator.send_message(AGENT, "on it", chat_id=agents, reply_to_message_id=reply.message_id)
    assert agent_says["reply_to_message"]["text"] == "Ticket #7"


async def test_commands_menu_button_and_chat_info_are_remembered(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    await bot.set_my_commands([BotCommand(command="help", description="How to reach a person")])
    await bot.set_my_commands(
        [BotCommand(command="help", description="Как связаться с оператором")], language_code="ru"
    )

    assert [c.description for c in await bot.get_my_commands()] == ["How to reach a person"]
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["Как связаться с оператором"]
    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == []
    assert await bot.set_chat_menu_button()
    chat = await bot.get_chat(ANNA.id)
    assert (chat.id, chat.type, chat.first_name) == (ANNA.id, "private", "Anna")
    assert await bot.send_chat_action(ANNA.id, "typing")
    assert [a.action for a in emulator.chat_actions] == ["typing"]


async def test_a_reply_keyboard_is_kept_for_the_chat_not_in_the_message(emulator: TelegramEmulator, bot: Bot) -> None:
    await emulator.send_message(ANNA, "hi")
    keyboard = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Talk to a person")]], one_time_keyboard=True)

    message = await bot.send_message(ANNA.id, "Choose", reply_markup=keyboard)

    assert message.reply_markup is None  # Telegram only shows inline keyboards in a Message
    [record] = emulator.bot_messages(ANNA.id)
    assert record.reply_markup is not None and record.reply_markup["keyboard"][0][0]["text"] == "Talk to a person"
    assert emulator.current_keyboard(ANNA.id) == record.reply_markup
    await emulator.send_message(ANNA, "Talk to a person")
    assert emulator.current_keyboard(ANNA.id) is None


# the user side over HTTP


async def test_a_person_with_curl_can_write_as_a_customer_and_read_the_chat(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message()
    async def menu(message: Message) -> None:
        await message.answer("Menu", reply_markup=yes_no())

    @dp.callback_query()
    async def chosen(query: CallbackQuery) -> None:
        await query.answer(f"chose {query.data}")

    control = f"{emulator.base_url}/_emulator"
    async with polling(emulator, dp, bot), aiohttp.ClientSession() as http:
        async with http.post(f"{control}/users/77/messages", json={"text": "hi", "language_code": "uk"}) as response:
            sent = await response.json()
        async with http.get(f"{control}/chats/77", params={"after": sent["result"]["message_id"], "wait": 5}) as r:
            chat = (await r.json())["result"]
        menu_id = chat["messages"][0]["message"]["message_id"]
        async with http.post(f"{control}/users/77/callbacks", json={"message_id": menu_id, "data": "No"}) as r:
            query = (await r.json())["result"]
        await emulator.wait_for_callback_answer(query["id"])
        async with http.post(f"{control}/users/77/callbacks", json={"message_id": menu_id, "data": "Maybe"}) as r:
            missing = (r.status, await r.json())
        async with http.get(f"{control}/requests", params={"method": "answerCallbackQuery"}) as r:
            answers = (await r.json())["result"]
        async with http.post(f"{control}/reset") as r:
            assert r.status == 200

    assert sent["ok"] and sent["result"]["from"] == {
        "id": 77,
        "is_bot": False,
        "first_name": "User 77",
        "language_code": "uk",
    }
    assert chat["chat"]["id"] == 77 and [m["message"]["text"] for m in chat["messages"]] == ["Menu"]
    assert query["data"] == "answer:no"
    assert missing[0] == 404 and "no inline button 'Maybe'" in missing[1]["description"]
    assert [a["params"]["text"] for a in answers] == ["chose answer:no"]
    assert emulator.users == {} and emulator.calls("sendMessage") == []


async def test_a_chat_nobody_wrote_in_is_empty_and_closed_to_the_bot_until_someone_writes(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    assert emulator.chat_messages(BORIS.id) == [] and emulator.current_keyboard(BORIS.id) is None
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(BORIS.id, "Hello?")
    with pytest.raises(LookupError, match=f"no chat {BORIS.id}"):
        await emulator.press_button(BORIS, 1, "Yes")

    waiting = asyncio.create_task(emulator.wait_for_bot_messages(BORIS.id))
    await emulator.send_message(BORIS, "hi")
    await bot.send_message(BORIS.id, "Hello, Boris")
    [greeting] = await waiting

    assert greeting.text == "Hello, Boris"
    assert emulator.updates[0]["message"]["from"] == {
        "id": 1002,
        "is_bot": False,
        "first_name": "Boris",
        "language_code": "uk",
    }
