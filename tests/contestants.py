"""Agents for tests that run in other processes (worker processes, Ray workers): named by import path
(``tests.contestants:Crasher``), so the worker imports them itself."""

from __future__ import annotations

import time


class Crasher:
    """Raises on day 3."""

    def reset(self, seed=None):
        pass

    def act(self, context):
        if context.day == 3:
            raise RuntimeError("boom")
        return None

    def update(self, outcome):
        pass


class Spinner(Crasher):
    """Busy for 3 s on every decision: pure Python, so a timer can interrupt it on any thread."""

    def act(self, context):
        end = time.perf_counter() + 3.0
        while time.perf_counter() < end:
            pass
