"""Load benchmark of the website chat widget: many visitors connected at once to one process, each asking.

``zabota bench widget`` starts the application in a child process (an embedded Redis and a data folder of its
own; the model and cached vectors are shared with the configured cache) serving only the widget, and then, from
this process, ``visitors`` visitors each open a session and a live event stream, and all ask a question at the
same moment. The figures: visitors answered per second, the time until the last answer, the time from a
question to its answer on the visitor's stream (p50, p99), answers lost (none expected), and the server's memory
per open connection (its resident memory with every stream open, less before they opened, per stream). The
per-address limit is lifted for the run: every visitor comes from this one address.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.settings import Settings

__all__ = ["run_console_bench", "run_widget_bench"]

QUESTIONS = ["Как отменить заказ?", "Сколько стоит доставка?", "Как вернуть товар?", "Не проходит оплата картой"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Visitor:
    def __init__(self, http: aiohttp.ClientSession, base: str, number: int) -> None:
        self.http = http
        self.base = base
        self.number = number
        self.token = ""
        self.answered = asyncio.Event()
        self.answers = 0
        self.asked = False
        self.stream: asyncio.Task[None] | None = None
        self.open = asyncio.Event()

    async def start(self) -> None:
        async with self.http.post(f"{self.base}/api/session", json={"lang": "ru"}) as response:
            response.raise_for_status()
            self.token = (await response.json())["token"]

    async def listen(self) -> None:
        async with self.http.get(f"{self.base}/api/events", params={"token": self.token}) as response:
            response.raise_for_status()
            self.open.set()
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if self.asked and event.get("type") == "message" and event.get("role") == "bot":
                    self.answers += 1
                    self.answered.set()

    async def ask(self, question: str, timeout: float) -> float | None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.asked = True
        async with self.http.post(
            f"{self.base}/api/send", json={"token": self.token, "id": f"q{self.number}", "text": question}
        ) as response:
            response.raise_for_status()
        try:
            await asyncio.wait_for(self.answered.wait(), max(0.0, timeout - (loop.time() - started)))
        except TimeoutError:
            return None
        return loop.time() - started


async def _serve(ready_file: str) -> None:
    """The child: the application without Telegram, serving only the widget, until its stdin closes."""
    from bot.factory import build_application
    from bot.runner import serve_web

    app = await build_application(Settings(), telegram=False)
    app.start_background()
    served = await serve_web(app)
    assert served is not None, "WEB_ENABLED is off"
    runner, address = served
    Path(ready_file).write_text(address)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    await app.close()


async def run_widget_bench(settings: Settings, visitors: int, *, timeout: float = 300.0) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="zabota-bench-web-") as tmp:
        ready = Path(tmp) / "address"
        env = {
            **os.environ,
            "ZABOTA_DATA_DIR": str(Path(tmp) / "data"),
            "ZABOTA_CACHE_DIR": str(settings.cache_dir.resolve()),
            "REDIS_URL": "",
            "WEB_ENABLED": "true",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": "0",
            "WEB_ADDRESS_MESSAGES_PER_MINUTE": str(max(120, visitors * 4)),
            "KB_SOURCE": str(settings.kb.source.resolve()),
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.bench_web", str(ready), env=env, stdin=asyncio.subprocess.PIPE
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 600
            while not ready.exists():
                if child.returncode is not None or loop.time() > deadline:
                    raise RuntimeError("the widget server did not start (see its log above)")
                await asyncio.sleep(0.5)
            base = ready.read_text()
            return await _load(base, child.pid, visitors, timeout)
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), 60)
            except TimeoutError:
                child.kill()


async def _load(base: str, pid: int, visitors: int, timeout: float) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
        people = [_Visitor(http, base, n) for n in range(visitors)]
        for start in range(0, visitors, 50):  # sessions (and their greetings) in batches, as visitors arrive
            await asyncio.gather(*(p.start() for p in people[start:start + 50]))
        await asyncio.sleep(1.0)
        before = _rss_mb(pid)
        for person in people:
            person.stream = asyncio.create_task(person.listen())
        await asyncio.wait_for(asyncio.gather(*(p.open.wait() for p in people)), 120)
        await asyncio.sleep(2.0)  # every stream has replayed its greeting
        with_streams = _rss_mb(pid)
        loop = asyncio.get_running_loop()
        started = loop.time()
        waits = await asyncio.gather(*(p.ask(QUESTIONS[p.number % len(QUESTIONS)], timeout) for p in people))
        elapsed = loop.time() - started
        await asyncio.sleep(1.0)
        answered = sorted(w for w in waits if w is not None)
        for person in people:
            if person.stream is not None:
                person.stream.cancel()
        await asyncio.gather(*(p.stream for p in people if p.stream is not None), return_exceptions=True)
        return {
            "visitors": visitors,
            "answered_per_second": round(len(answered) / elapsed, 1),
            "last_answered_s": round(elapsed, 2),
            "p50_s": round(statistics.median(answered), 3) if answered else None,
            "p99_s": round(answered[min(len(answered) - 1, int(0.99 * len(answered)))], 3) if answered else None,
            "unanswered": visitors - len(answered),
            "answered_twice": sum(1 for p in people if p.answers > 1),
            "server_rss_mb": round(with_streams, 1),
            "kb_per_open_stream": round((with_streams - before) * 1024 / visitors, 1),
            "measured_at": time.strftime("%Y-%m-%d"),
        }



# ---------------------------------------------------------------------------- the agents' workplace


async def run_console_bench(
    settings: Settings, open_tickets: int, *, closed_tickets: int = 0, samples: int = 50
) -> dict[str, object]:
    """``zabota bench console``: the workplace with ``open_tickets`` tickets waiting and ``closed_tickets`` closed
    ones, in this process (an embedded Redis in a temporary folder): how long the inbox takes to load, how long a
    search of the closed conversations takes, and how long a customer's message takes to reach an agent's open
    page (from the message stored to the page's live stream telling it)."""
    from bot.core.conversation import Turn
    from bot.factory import build_application
    from bot.web.server import web_app
    from handoff import Reason, TicketRequest

    agent_id = 1
    with tempfile.TemporaryDirectory(prefix="zabota-bench-console-") as tmp:
        run_settings = Settings(
            app=settings.app.model_copy(update={"data_dir": Path(tmp), "cache_dir": settings.cache_dir, "ops_port": 0}),
            kb=settings.kb,
            redis=settings.redis.model_copy(update={"url": ""}),
            handoff=settings.handoff.model_copy(update={"agent_ids": [agent_id], "working_hours": "24/7"}),
            surveys=settings.surveys,
            web=settings.web.model_copy(update={"enabled": True}),
        )
        app = await build_application(run_settings, telegram=False)
        runner = None
        try:
            assert app.console is not None
            names = ["Анна", "Олена", "John", "Мария", "Пётр"]
            for start in range(0, open_tickets, 500):
                await asyncio.gather(*(app.desk.open(TicketRequest(
                    chat_id=500_000 + n, user_id=500_000 + n, customer_name=f"{names[n % 5]} {n}", lang="ru",
                    reason=Reason.BOT_UNSURE, question=f"Вопрос номер {n}: где мой заказ?",
                )) for n in range(start, min(open_tickets, start + 500))))
            searched = await _closed_conversations(app, closed_tickets) if closed_tickets else {}
            runner = web.AppRunner(web_app(app.widget, app.console))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            link = await app.console.sign_in_link(agent_id)
            token = link.split("t=", 1)[1]
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(f"{base}/console/signin", data={"t": token}, allow_redirects=False) as response:
                    assert response.status == 303, await response.text()
                loads: dict[str, list[float]] = {}
                for view in ("waiting", "open"):
                    for _ in range(10):
                        started = time.perf_counter()
                        async with http.get(f"{base}/console", params={"view": view}) as response:
                            await response.read()
                            assert response.status == 200
                        loads.setdefault(view, []).append(time.perf_counter() - started)
                if closed_tickets:
                    for _ in range(5):
                        for query in _SEARCHES:
                            started = time.perf_counter()
                            await app.search.search(query)
                            loads.setdefault("search_alone", []).append(time.perf_counter() - started)
                    for _ in range(5):
                        for query in _SEARCHES:
                            started = time.perf_counter()
                            async with http.get(f"{base}/console", params={"view": "closed", "q": query}) as response:
                                await response.read()
                                assert response.status == 200
                            loads.setdefault("search", []).append(time.perf_counter() - started)
                delays = await _live_delays(http, base, app, samples, Turn)
        finally:
            if runner is not None:
                await runner.cleanup()
            await app.close()
    return {
        "open_tickets": open_tickets,
        "closed_tickets": closed_tickets,
        **searched,
        **{f"inbox_{view}_p50_ms": round(1000 * statistics.median(times), 1) for view, times in loads.items()},
        **{f"inbox_{view}_max_ms": round(1000 * max(times), 1) for view, times in loads.items()},
        "live_update_p50_s": round(statistics.median(delays), 3),
        "live_update_p99_s": round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 3),
        "measured_at": time.strftime("%Y-%m-%d"),
    }


# What agents look for: a name, a common word, two words, an order number, a ticket number, a word nobody said.
_SEARCHES = ("Анна", "заказ", "баллы начислили", "48213", "T777", "Олена возврат", "трансляция")


async def _closed_conversations(app: Any, count: int) -> dict[str, object]:
    """``count`` closed tickets with conversations (the sample questions, agents' replies, order numbers, names),
    written straight into Redis, then indexed as ``zabota run`` does on start for tickets it has not seen."""
    import kb_index
    from bot.core.conversation import Turn
    from handoff import Outcome, Reason, Ticket, TicketState
    from handoff import keys as handoff_keys

    sample = Path(kb_index.__file__).parent / "sample_kb_questions.jsonl"
    questions = [json.loads(line)["query"] for line in sample.read_text(encoding="utf-8").splitlines() if line]
    replies = ["Здравствуйте! Проверяю ваш заказ.", "Баллы начислены, проверьте, пожалуйста.",
               "Оформил возврат, деньги придут за 3-5 дней.", "Передал курьеру, он позвонит.",
               "Hello! Checking your order now.", "Вітаю! Перевіряю ваше замовлення."]
    names = ["Анна", "Олена", "John", "Мария", "Пётр", "Иван", "Ольга", "Дмитрий", "Emma", "Тарас"]
    rng = random.Random(7)
    redis = app.redis
    first = int(await redis.get(handoff_keys.SEQUENCE) or 0) + 1
    now = time.time()
    for start in range(0, count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(first + start, first + min(count, start + 1000)):
                asked = rng.sample(questions, 2)
                ticket = Ticket(
                    id=f"T{n}", chat_id=700_000 + n, user_id=700_000 + n, lang="ru", state=TicketState.CLOSED,
                    customer_name=f"{rng.choice(names)} {rng.choice(names)}ова", reason=Reason.BOT_UNSURE,
                    question=asked[0], created_at=now - n, closed_at=now - n + 600, outcome=Outcome.RESOLVED.value,
                )
                pipe.hset(handoff_keys.ticket(ticket.id), mapping=ticket.to_redis())
                turns = [Turn("customer", "text", asked[0]), Turn("agent", "text", rng.choice(replies)),
                         Turn("customer", "text", f"{asked[1]} Заказ {rng.randrange(10_000, 99_999)}"),
                         Turn("agent", "text", rng.choice(replies))]
                pipe.rpush(handoff_keys.context(ticket.id), *(turn.to_json() for turn in turns))
            await pipe.execute()
    await redis.set(handoff_keys.SEQUENCE, first + count - 1)
    used = int((await redis.info("memory"))["used_memory"])
    started = time.perf_counter()
    indexed = await app.search.catch_up()
    seconds = time.perf_counter() - started
    return {
        "search_indexed": indexed,
        "search_index_s": round(seconds, 1),
        "search_index_mb": round((int((await redis.info("memory"))["used_memory"]) - used) / 2**20, 1),
    }


async def _live_delays(http: aiohttp.ClientSession, base: str, app: Any, samples: int, turn: Any) -> list[float]:
    """A customer's message appended to ticket T1, ``samples`` times, each timed until the page's stream says so."""
    delays: list[float] = []
    async with http.get(f"{base}/console/events", params={"ticket": "T1"}) as stream:
        async def next_change() -> None:
            async for raw in stream.content:
                if raw.startswith(b"data: "):
                    return

        await asyncio.wait_for(next_change(), 10)  # the page's first state
        for n in range(samples):
            await asyncio.sleep(random.uniform(0.2, 0.8))  # land anywhere in the stream's polling period
            started = time.perf_counter()
            await app.desk.append_turn("T1", turn("customer", "text", f"ещё вопрос {n}", "ru"))
            await asyncio.wait_for(next_change(), 10)
            delays.append(time.perf_counter() - started)
    return sorted(delays)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
