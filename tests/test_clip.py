import threading
import time

import numpy as np
import pytest

from vidsim.clip import prefetch


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(100)), 4, threading.Event())) == list(range(100))


def test_prefetch_raises_the_producers_error_after_its_items():
    def items():
        yield 1
        yield 2
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for x in prefetch(items(), 2, threading.Event()):
            got.append(x)
    assert got == [1, 2]


def test_leaving_early_closes_the_producer():
    """A consumer that stops (an error elsewhere) closes the source: ffmpeg gets killed."""
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(3)
        finally:
            closed.set()

    for i, _ in enumerate(prefetch(endless(), 2, threading.Event())):
        if i == 5:
            break
    assert closed.wait(2.0)

    stop = threading.Event()
    closed.clear()
    gen = prefetch(endless(), 2, stop)
    next(gen)
    stop.set()
    t = time.perf_counter()
    assert list(gen) == []
    assert closed.wait(2.0) and time.perf_counter() - t < 2.0
