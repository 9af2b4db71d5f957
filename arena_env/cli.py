"""Shared pieces of the command-line scripts (``evaluate.py``, ``train.py``)."""

from __future__ import annotations

import argparse


def int_at_least(lo: int, flag: str | None = None, hi: int | None = None):
    """An argparse type: an integer >= ``lo`` (``int_at_least(1)``: a positive integer), and <= ``hi``
    when given; with ``flag`` the error says how to fix it (``pass --seeds 2 or more``)."""
    word = {0: "a non-negative integer", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")
    if hi is not None:
        word = f"an integer from {lo} to {hi}"
    fix = (f"; pass {flag} {lo} or more" if hi is None else f"; pass {flag} {lo} .. {hi}") if flag else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
        if value < lo or hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"expected {word}, got {value}{fix}")
        return value

    parse.__name__ = word
    return parse
