"""The checkout's root, and how a path is shown in what the project writes (cards, manifests,
benchmark JSON): relative to the root when it lies inside the checkout, so that shipped outputs do
not carry the path of the machine that made them; as given otherwise (a user's own file)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shown(path: str | os.PathLike) -> str:
    """``path`` relative to :data:`PROJECT_ROOT` when it is inside it (``configs/scenarios/default.yaml``),
    else unchanged."""
    p = Path(path)
    try:
        r = p.resolve()
    except OSError:
        return str(path)
    return str(r.relative_to(PROJECT_ROOT)) if r.is_relative_to(PROJECT_ROOT) else str(path)
