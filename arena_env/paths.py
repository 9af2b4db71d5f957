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


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as an output directory, checked before any work is done: ``FileExistsError`` when a file
    (not a directory) is there, naming ``flag`` and the fix.  Whether a directory may be reused is the
    caller's rule (a run refuses one that holds a run)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FileExistsError(f"{flag} {p}: a file is there, and {flag} names a directory (the outputs go in it); "
                              f"pass a new path, or remove the file")
    return p


RUN_MARKERS = ("cells.jsonl", "results.parquet", "manifest.json")  # what an evaluate.py run leaves in its directory


def run_in(path: str | os.PathLike) -> str | None:
    """The first of :data:`RUN_MARKERS` that the directory ``path`` holds (an evaluate.py run is there),
    or None."""
    p = Path(path)
    return next((m for m in RUN_MARKERS if (p / m).exists()), None)
