"""Shared pieces of the command-line scripts (``evaluate.py``, ``train.py``)."""

from __future__ import annotations

import argparse


def int_at_least(lo: int, flag: str | None = None):
    """An argparse type: an integer >= ``lo`` (``int_at_least(1)``: a positive integer); with ``flag``
    the error says how to fix it (``pass --seeds 2 or more``)."""
    word = {0: "a non-negative integer", 1: "a positive integer"}.get(lo, f"an integer >= {lo}")
    fix = f"; pass {flag} {lo} or more" if flag else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected {word}, got {value}{fix}")
        return value

    parse.__name__ = word
    return parse
