"""Batching: requests that arrive together share a call, sizes never mix, a full queue refuses."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from fasterseg.serve.batching import Batcher, QueueFull


def brightest_channel(images):
    """A real per-pixel answer the test can recompute: argmax over RGB."""
    return [image.argmax(-1).astype(np.uint8) for image in images]


def images(n: int, shape=(8, 12, 3), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, shape, dtype=np.uint8) for _ in range(n)]


def test_requests_that_arrive_together_run_as_batches_of_one_size():
    calls = []

    def infer(batch):
        calls.append([im.shape for im in batch])
        return brightest_channel(batch)

    async def main():
        batcher = Batcher(infer, max_batch=4, max_wait=0.05, max_queue=32)
        await batcher.start()
        small, large = images(5), images(2, (16, 16, 3), seed=1)
        mixed = small[:3] + large + small[3:]
        results = await asyncio.gather(*(batcher.submit(im) for im in mixed))
        await batcher.stop()
        return mixed, results

    mixed, results = asyncio.run(main())
    for image, labels in zip(mixed, results):  # every caller gets its own image's answer
        assert np.array_equal(labels, image.argmax(-1))
    assert sorted(len(c) for c in calls) == [1, 2, 4]  # 5 small ones: 4 + 1; the 2 large ones together
    assert all(len(set(c)) == 1 for c in calls)


def test_a_full_queue_refuses_and_the_rest_are_answered():
    release = threading.Event()

    def infer(batch):
        release.wait(10)  # the first batch holds the inference thread while the queue fills
        return brightest_channel(batch)

    async def main():
        batcher = Batcher(infer, max_batch=1, max_wait=0, max_queue=2)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(images(1)[0]))
        await asyncio.sleep(0.05)  # taken off the queue, running
        waiting = [asyncio.create_task(batcher.submit(im)) for im in images(2, seed=2)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="max_queue 2"):
            await batcher.submit(images(1, seed=3)[0])
        release.set()
        done = await asyncio.gather(first, *waiting)
        await batcher.stop()
        return done, batcher.metrics

    done, metrics = asyncio.run(main())
    assert len(done) == 3 and metrics.batch_sizes.n == 3 and metrics.queue_depth == 0


def test_an_inference_error_reaches_every_caller_of_the_batch():
    def infer(batch):
        raise RuntimeError("backend failed")

    async def main():
        batcher = Batcher(infer, max_batch=4, max_wait=0.02)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(im) for im in images(3)), return_exceptions=True)
        await batcher.stop()
        return results

    assert [str(r) for r in asyncio.run(main())] == ["backend failed"] * 3
