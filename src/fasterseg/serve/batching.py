"""Requests that arrive together run as one batch, off the event loop.

The first waiting request opens a batch; the batcher waits at most ``max_wait`` seconds for
others of the same image size (only equal sizes stack), up to ``max_batch``, then runs them in
one call on a single inference thread, so the event loop keeps accepting requests and the
next batch gathers while this one runs. A queue longer than ``max_queue`` refuses new requests
(:class:`QueueFull`: the server answers 503 with Retry-After) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fasterseg.serve.metrics import Metrics


class QueueFull(Exception):
    """The batcher's queue is full: come back later."""


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future


class Batcher:
    """``infer(images) -> label maps`` behind an asyncio queue; ``start`` and ``stop`` on the loop."""

    def __init__(self, infer: Callable[[Sequence[np.ndarray]], list[np.ndarray]], max_batch: int = 8,
                 max_wait: float = 0.005, max_queue: int = 64, metrics: Metrics | None = None):
        self.infer, self.max_batch, self.max_wait, self.max_queue = infer, max_batch, max_wait, max_queue
        self.metrics = metrics or Metrics()
        self._queue: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fasterseg-infer")
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker and its thread."""
        while self._queue:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """The label map of ``image`` once its batch has run; :class:`QueueFull` when the queue is full."""
        if self._arrived is None:
            raise RuntimeError("the batcher is not started")
        if len(self._queue) >= self.max_queue:
            raise QueueFull(f"{len(self._queue)} requests are waiting (max_queue {self.max_queue})")
        job = _Job(image, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self.metrics.queue_depth = len(self._queue)
        self._arrived.set()
        return await job.future

    def _take_batch(self) -> list[_Job]:
        shape = self._queue[0].image.shape
        batch, rest = [], deque()
        while self._queue:
            job = self._queue.popleft()
            if job.future.done():  # its client went away
                continue
            (batch if job.image.shape == shape and len(batch) < self.max_batch else rest).append(job)
        self._queue = rest
        self.metrics.queue_depth = len(self._queue)
        return batch

    def _ready(self) -> int:
        shape = self._queue[0].image.shape
        return sum(job.image.shape == shape for job in self._queue)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            deadline = loop.time() + self.max_wait
            while self._ready() < self.max_batch and (left := deadline - loop.time()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._take_batch()
            if not batch:
                continue
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.infer, [job.image for job in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.metrics.inference.observe(time.perf_counter() - start)
            self.metrics.batch_sizes.observe(len(batch))
            for job, labels in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(labels)
