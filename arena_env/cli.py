"""Shared pieces of the command-line scripts (``evaluate.py``, ``train.py``)."""

from __future__ import annotations

import argparse


def int_at_least(lo: int):
    """An argparse type: an integer >= ``lo`` (``int_at_least(1)``: a positive integer)."""
    word = {0: "non-negative", 1: "positive"}.get(lo, f">= {lo}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {word} integer, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected a {word} integer, got {value}")
        return value

    parse.__name__ = f"{word} integer"
    return parse
