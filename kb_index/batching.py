"""Micro-batching of questions that arrive at the same time, so that concurrent customers share one encoder call.

A question waits at most ``max_wait`` seconds for company; the batch is encoded in a worker thread while the
event loop keeps serving. The same text asked again soon (the intent classifier and the knowledge base encode
most messages alike; many customers ask the same words) gets the vector already computed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["QueryBatcher"]


class QueryBatcher:
    """Collects single encode requests into batches of at most ``max_batch``.

    The encoder does more short questions a second in larger batches, so a burst of customers is cleared
    sooner; a question asked alone still waits at most ``max_wait`` for company.
    """

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        remember: int = 4096,
    ) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._remember = remember
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self.reused = 0  # vectors given again without encoding
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[np.ndarray]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def encode(self, text: str) -> np.ndarray:
        known = self._recent.get(text)
        if known is not None:
            self._recent.move_to_end(text)
            self.reused += 1
            return known
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="kb-query-batcher")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._max_wait
            while len(batch) < self._max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            texts = list(dict.fromkeys(text for text, _ in batch))  # the same text once
            try:
                vectors = await asyncio.to_thread(self._encode, texts)
            except Exception as exc:  # handed to every waiting caller, none is left hanging
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            by_text = dict(zip(texts, vectors))
            for text, vector in by_text.items():
                vector.setflags(write=False)  # shared by every caller asking the same
                self._recent[text] = vector
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
            for text, future in batch:
                if not future.done():
                    future.set_result(by_text[text])

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.cancel()
