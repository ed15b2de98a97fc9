"""End-to-end benchmark: the real bot (long polling through the inbox) against the Bot API emulator.

``zabota bench e2e`` runs the whole application, with an embedded Redis, in this process, on a data folder of
its own (the index is built from ``KB_SOURCE``; the model and cached vectors are shared with the configured
cache), and Telegram's side in a second process: the emulator and the customers, as Telegram's servers and
customers are not on the bot's machine either (they still share its cores here). ``customers`` customers each
send one question at the same moment, after a burst of as many other customers that is not measured (a bot that
has been running has its connections open). The figures are how fast they are all answered: customers answered
per second, the time until the last answer, the time from question to answer (p50, p99), Bot API messages per
answer; and what an answer cost: CPU milliseconds of the bot's process (its event loop and the encoder's
threads), of Telegram's side and of the Redis server, and commands sent to Redis. It runs twice: with
Telegram's outgoing limits (the bot paces itself; the emulator answers 429 past them) and with the limits
lifted, to show what the bot itself can do.

``zabota bench dialogs`` plays typical dialogs (``DIALOGS``) against the real bot and counts what each costs of
Telegram's budget: messages sent to the customer, edits, answers to his taps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from bot.emulator import EmulatedUser, EmulatorTimeoutError, FloodLimits, TelegramEmulator
from bot.event_loop import run_on_uvloop
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.factory import Application

__all__ = ["DIALOGS", "run_dialogs", "run_e2e"]

log = logging.getLogger(__name__)

QUESTIONS = ["Как отменить заказ?", "Сколько стоит доставка?", "Как вернуть товар?", "Не проходит оплата картой"]


async def _one_run(settings: Settings, customers: int, *, limits: bool, timeout: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    telegram = context.Process(target=_telegram_side, args=(theirs, customers, limits, timeout), daemon=True)
    telegram.start()
    theirs.close()  # the child's end lives in the child: if it dies, ``recv`` here ends instead of waiting forever
    try:
        base_url, token = await loop.run_in_executor(None, ours.recv)
        async with _running_bot(settings, base_url, token, limits=limits) as app:
            ours.send("warm up")
            await loop.run_in_executor(None, ours.recv)  # the warm-up burst is answered
            before = await _bot_work(app.redis)
            ours.send("ask")
            row: dict[str, object] = await loop.run_in_executor(None, ours.recv)
            after = await _bot_work(app.redis)
            row.update({f"{name}_per_answer": round((after[name] - before[name]) / customers, digits)
                        for name, digits in (("bot_cpu_ms", 2), ("redis_cpu_ms", 2), ("redis_commands", 1))})
            return row
    finally:
        ours.close()
        await loop.run_in_executor(None, telegram.join, 30)
        if telegram.is_alive():
            telegram.kill()


@contextlib.asynccontextmanager
async def _running_bot(settings: Settings, base_url: str, token: str, *, limits: bool) -> AsyncIterator[Application]:
    """The whole bot, long polling ``base_url``, on a data folder of its own with an embedded Redis."""
    from bot.factory import build_application

    with tempfile.TemporaryDirectory(prefix="zabota-bench-") as tmp:
        run_settings = Settings(
            app=settings.app.model_copy(update={"data_dir": Path(tmp), "cache_dir": settings.cache_dir, "ops_port": 0}),
            kb=settings.kb,
            redis=settings.redis.model_copy(update={"url": ""}),  # embedded, in the temporary folder
            dialog=settings.dialog.model_copy(update={"flood_limit": 1000}),
            handoff=settings.handoff,
            surveys=settings.surveys,
            actions=settings.actions,
        )
        run_settings.telegram = settings.telegram.model_copy(update={"api_base": base_url, "outgoing_limits": limits})
        app = await build_application(run_settings, token=token)
        app.start_background()
        polling = asyncio.create_task(app.run_polling(timeout=1))
        try:
            yield app
        finally:
            app.stop()
            await asyncio.gather(polling, return_exceptions=True)
            await app.close()


async def _bot_work(redis: Redis) -> dict[str, float]:
    """What the bot's side has spent so far: its process's CPU (the event loop and the encoder's threads), the
    Redis server's CPU and the commands it was sent, so that a run's share per answer can be read off."""
    stats = await redis.info("commandstats")
    cpu = await redis.info("cpu")
    return {
        "bot_cpu_ms": time.process_time() * 1000,
        "redis_cpu_ms": (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1000,
        "redis_commands": float(sum(int(v["calls"]) for v in stats.values())),
    }


def _telegram_side(pipe: Connection, customers: int, limits: bool, timeout: float) -> None:
    """Telegram's side of a run, in its own process: the emulator, then the customers once the bot is polling."""
    run_on_uvloop(_customers_ask(pipe, customers, limits, timeout))


async def _customers_ask(pipe: Connection, customers: int, limits: bool, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    emulator = TelegramEmulator(flood_limits=FloodLimits() if limits else None)
    await emulator.start()
    try:
        pipe.send((emulator.base_url, emulator.token))
        waits: list[float] = []
        unanswered = 0

        async def ask(user: EmulatedUser, question: str) -> None:
            nonlocal unanswered
            asked = loop.time()
            await emulator.send_message(user, question)
            try:
                await emulator.wait_for_bot_messages(user.id, 1, timeout=timeout)
            except EmulatorTimeoutError:
                unanswered += 1
                return
            waits.append(loop.time() - asked)

        async def burst(first_id: int) -> list[EmulatedUser]:
            users = [EmulatedUser(id=first_id + n, first_name="Анна", language_code="ru") for n in range(customers)]
            await asyncio.gather(*(ask(u, QUESTIONS[n % len(QUESTIONS)]) for n, u in enumerate(users)))
            return users

        # A burst of other customers first, not measured: a bot that has been running has its connections to
        # Redis and to the Bot API open, as many as a burst needs; a bot just started opens them in the burst.
        await loop.run_in_executor(None, pipe.recv)  # the bot is polling
        await burst(200_000)
        waits.clear()
        unanswered = 0
        rejected = emulator.flood_rejections
        pipe.send("warmed up")
        await loop.run_in_executor(None, pipe.recv)
        started, cpu = loop.time(), time.process_time()
        users = await burst(100_000)
        elapsed, cpu = loop.time() - started, time.process_time() - cpu
        await asyncio.sleep(1.0)  # the rest of each reply, if an answer were more than one message
        sent = sum(len(emulator.bot_messages(u.id)) for u in users)
        waits.sort()
        pipe.send(
            {
                "limits": "Telegram's" if limits else "lifted",
                "customers": customers,
                "answered_per_second": round(len(waits) / elapsed, 1),
                "last_answered_s": round(elapsed, 2),
                "p50_s": round(statistics.median(waits), 3) if waits else None,
                "p99_s": round(waits[min(len(waits) - 1, int(0.99 * len(waits)))], 3) if waits else None,
                "messages_per_answer": round(sent / customers, 2),
                "rejected_429": emulator.flood_rejections - rejected,
                "unanswered": unanswered,
                "telegram_side_cpu_ms_per_answer": round(cpu * 1000 / customers, 2),
            }
        )
    finally:
        await emulator.stop()
        pipe.close()


# Typical dialogs, each played by a customer of his own. A step is what he writes, or the button he taps on the
# bot's last message with buttons: a text key of his language's buttons, or "first" for the first button.
DIALOGS: dict[str, list[tuple[str, str]]] = {
    "a greeting, an answer that helped": [("say", "Здравствуйте"), ("say", "Как отменить заказ?"), ("tap", "btn_yes")],
    "a choice of articles, one chosen, it helped": [
        ("say", "купил стиральную машину, она сломалась"), ("tap", "first"), ("tap", "btn_yes")
    ],
    "an answer that did not help, then a person": [
        ("say", "Как вернуть товар?"), ("tap", "btn_no"), ("tap", "btn_human")
    ],
}


async def run_dialogs(settings: Settings) -> list[dict[str, object]]:
    """What each of ``DIALOGS`` costs in Bot API requests (the real bot against the emulator): messages sent to
    the customer, edits of them, answers to his taps; and how many of the messages were answers (an answer was
    two messages when "did this help?" was a message of its own)."""
    rows = []
    async with TelegramEmulator() as emulator, _running_bot(
        settings, emulator.base_url, emulator.token, limits=True
    ) as app:
        for number, (name, steps) in enumerate(DIALOGS.items()):
            user = EmulatedUser(id=300_000 + number, first_name="Анна", language_code="ru")
            taps: set[str] = set()
            for action, value in steps:
                if action == "say":
                    await emulator.send_message(user, value)
                else:
                    last = next(m for m in reversed(emulator.bot_messages(user.id)) if m.reply_markup)
                    labels = [b["text"] for row in last.reply_markup.get("inline_keyboard", []) for b in row]  # type: ignore[union-attr]
                    label = labels[0] if value == "first" else app.texts.get("ru", value)
                    taps.add(str((await emulator.press_button(user, last, label))["id"]))
                await _quiet(emulator, user.id)
            requests = [r for r in emulator.requests if r.params.get("chat_id") in (user.id, str(user.id))]
            sent = emulator.bot_messages(user.id)
            yes = app.texts.get("ru", "btn_yes")
            log.info("%s: %s", name, " | ".join((m.text or "")[:40].replace("\n", " ") for m in sent))
            tap_answers = sum(1 for r in emulator.calls("answerCallbackQuery") if str(r.params.get("callback_query_id")) in taps)
            rows.append({
                "dialog": name,
                "messages": len(sent),
                "of_them_answers": sum(1 for r in requests if r.method.lower() == "sendmessage"
                                       and yes in json.dumps(r.params.get("reply_markup") or "", ensure_ascii=False)),
                "edits": sum(1 for r in requests if r.method.lower().startswith("edit")),
                "tap_answers": tap_answers,
                "bot_api_requests": len(requests) + tap_answers,  # a tap's answer names the tap, not the chat
            })
    return rows


async def _quiet(emulator: TelegramEmulator, chat_id: int, *, first: float = 15.0, quiet: float = 1.5) -> None:
    """Until the bot has answered the step and then said nothing more for ``quiet`` seconds."""
    await emulator.wait_for_bot_messages(chat_id, 1, timeout=first)
    with contextlib.suppress(EmulatorTimeoutError):
        while True:
            await emulator.wait_for_bot_messages(chat_id, 1, timeout=quiet)


async def run_e2e(
    settings: Settings, customers: int, *, runs: int = 1, timeout: float = 180.0
) -> list[dict[str, object]]:
    """Each mode ``runs`` times (a row each): single bursts of a few seconds vary from run to run on a shared
    machine, so compare changes over several."""
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # a line per update would be most of the time
    results = []
    for limits in (True, False):
        for run in range(1, runs + 1):
            started = time.perf_counter()
            row = await _one_run(settings, customers, limits=limits, timeout=timeout)
            results.append({"limits": row.pop("limits"), "run": run, **row})
            logging.getLogger(__name__).info("run done in %.0f s", time.perf_counter() - started)
    return results
