"""Progress bars on stderr, one style for every long job (``evaluate.py``'s cells, ``train.py``'s steps).

On a terminal the bar redraws one line; otherwise (a log file, CI) it writes a line at every tenth of
the job, and at the end."""

from __future__ import annotations

import sys


def bar(done: int, total: int, unit: str, elapsed: float, eta: float, extra: str = "") -> str:
    """``[#####-----] 12/30 cells  ...  4.2s elapsed  ETA 6.1s``."""
    filled = int(30 * min(done, total) / total) if total else 30
    extra = f"  {extra}" if extra else ""
    return (f"[{'#' * filled}{'-' * (30 - filled)}] {done}/{total} {unit}{extra}  {elapsed:6.1f}s elapsed  "
            f"ETA {eta:6.1f}s")


def due(done: int, previous: int, total: int) -> bool:
    """Whether a non-terminal stream should get a line now (``done`` reached a new tenth, or the end)."""
    return done >= total or int(10 * done / total) > int(10 * previous / total)


def show(line: str, final: bool) -> None:
    """Write ``line``: redrawn in place on a terminal, one line per call otherwise."""
    if sys.stderr.isatty():
        print(f"\r{line}", end="\n" if final else "", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def cells(done: int, total: int, elapsed: float, reused: int = 0) -> None:
    """The tournament's progress callback (``tournament.run(progress=...)``): cells done, elapsed time
    and the estimated time left (from the cells played by this run, not those reused from the store)."""
    played = done - reused
    eta = elapsed / played * (total - done) if played > 0 else float("nan")
    if sys.stderr.isatty() or due(done, done - 1, total):
        show(bar(done, total, "cells", elapsed, eta), done == total)
