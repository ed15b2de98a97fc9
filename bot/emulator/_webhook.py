"""Webhook delivery: queued updates are POSTed to the bot the way Telegram does it.

One update at a time per chat and in order, at most ``max_connections`` at once, the secret in
``X-Telegram-Bot-Api-Secret-Token``, retries with a growing delay after an error, and a Bot API call in the
webhook's answer executed as if the bot had made it. Several target URLs are served in turn, like a load balancer
in front of several bot processes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bot.emulator._api import BotApi
from bot.emulator._errors import BotApiError
from bot.emulator._params import Params, read_body
from bot.emulator._state import EmulatorState, QueuedUpdate, WebhookAttempt, WebhookConfig

__all__ = ["WebhookDelivery"]

_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_MAX_BACKOFF_STEPS = 6


class WebhookDelivery:
    """Owns the delivery tasks; started and stopped with the emulator."""

    def __init__(self, state: EmulatorState, api: BotApi, *, retry_delay: float, timeout: float) -> None:
        self._state = state
        self._api = api
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.targets: list[str] = []
        self._next_target = 0
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = 0  # counted here, not by len(_tasks): a finishing task is still in _tasks when it kicks
        self._busy_chats: set[int] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._state.changed.add_listener(self.kick)
        self.kick()

    async def stop(self) -> None:
        self._state.changed.remove_listener(self.kick)
        session, self._session = self._session, None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if session is not None:
            await session.close()

    def kick(self) -> None:
        """Starts a delivery for every update that may go out now; called on every change of the state."""
        webhook = self._state.webhook
        if self._session is None:
            return
        if webhook is None:
            # Deleting the webhook hands the updates still being retried back to getUpdates at once.
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()
            for entry in self._state.queue:
                entry.in_flight = False
            return
        waiting_chats: set[int] = set()
        for entry in self._state.queue:
            if self._active >= webhook.max_connections:
                return
            if entry.in_flight:
                continue
            key = entry.chat_key
            if key is not None and (key in self._busy_chats or key in waiting_chats):
                waiting_chats.add(key)
                continue
            entry.in_flight = True
            self._active += 1
            if key is not None:
                self._busy_chats.add(key)
            task = asyncio.create_task(self._deliver(entry), name=f"webhook-update-{entry.update_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _pick_url(self, webhook: WebhookConfig) -> str:
        if not self.targets:
            return webhook.url
        url = self.targets[self._next_target % len(self.targets)]
        self._next_target += 1
        return url

    async def _deliver(self, entry: QueuedUpdate) -> None:
        state = self._state
        attempt = 0
        try:
            while True:
                webhook = state.webhook
                session = self._session
                if webhook is None or session is None or not any(e is entry for e in state.queue):
                    return
                url = self._pick_url(webhook)
                headers = {_SECRET_HEADER: webhook.secret_token} if webhook.secret_token else {}
                status: int | None = None
                try:
                    async with session.post(url, json=entry.update, headers=headers) as response:
                        status = response.status
                        if 200 <= status < 300:
                            reply = await self._read_reply(response)
                            attempt_log = WebhookAttempt(entry.update_id, url, status, None, time.time())
                            state.webhook_attempts.append(attempt_log)
                            state.remove_queued(entry)
                            if reply is not None:
                                await self._api.handle(
                                    self._api.token, str(reply.pop("method")), Params(reply), via_webhook_reply=True
                                )
                            return
                        error = f"Wrong response from the webhook: {status} {response.reason or ''}".rstrip()
                except (aiohttp.ClientError, TimeoutError, OSError) as failure:
                    error = _describe_failure(failure)
                webhook.last_error_date = int(time.time())
                webhook.last_error_message = error
                state.webhook_attempts.append(WebhookAttempt(entry.update_id, url, status, error, time.time()))
                state.changed.notify()
                await asyncio.sleep(self.retry_delay * 2 ** min(attempt, _MAX_BACKOFF_STEPS))
                attempt += 1
        finally:
            entry.in_flight = False
            self._active -= 1
            if entry.chat_key is not None:
                self._busy_chats.discard(entry.chat_key)
            if self._session is not None:
                state.changed.notify()

    async def _read_reply(self, response: aiohttp.ClientResponse) -> dict[str, Any] | None:
        """A Bot API call the bot put in its answer to the webhook, as Telegram allows; None for a plain answer."""
        if not response.headers.get("Content-Type"):
            return None
        try:
            values = await read_body(response.headers, response.content)
        except (BotApiError, aiohttp.ClientError, ValueError):
            # Telegram reads an answer it cannot parse as a plain "ok": the update was delivered.
            return None
        return values if isinstance(values.get("method"), str) else None


def _describe_failure(failure: BaseException) -> str:
    if isinstance(failure, TimeoutError):
        return "Read timeout expired"
    if isinstance(failure, aiohttp.ClientConnectorError):
        return "Connection refused"
    return f"{type(failure).__name__}: {failure}"
