"""The checkout's root, and how a path is shown in what the project writes (cards, manifests,
benchmark JSON): relative to the root when it lies inside the checkout, so that shipped outputs do
not carry the path of the machine that made them; as given otherwise (a user's own file)."""

from __future__ import annotations

import os
import tempfile
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


class OutDirError(FileExistsError):
    """An output directory that cannot hold the outputs: a file is there or on its path, or nothing can be
    written there.  A ``FileExistsError``, so every caller that reports a taken ``--out`` reports it too."""


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` as an output directory, checked before any work is done: :class:`OutDirError` when a file
    (not a directory) is there or on its path, or when the directory cannot be created or written (no
    permission, a read-only file system), naming ``flag`` and the fix.  The check creates the missing
    directories and a temporary file, and removes what it created.  Whether a directory may be reused is
    the caller's rule (a run refuses one that holds a run)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutDirError(f"{flag} {p}: a file is there, and {flag} names a directory (the outputs go in it); "
                          f"pass a new path, or remove the file")
    missing, q = [], p
    while not q.exists() and q.parent != q:
        missing.append(q)
        q = q.parent
    if q.exists() and not q.is_dir():
        raise OutDirError(f"{flag} {p}: {q} is a file, so {p} cannot be a directory; pass another path, or "
                          f"remove the file")
    try:
        for d in reversed(missing):
            d.mkdir()
        tempfile.TemporaryFile(dir=p).close()
    except OSError as exc:
        raise OutDirError(f"{flag} {p}: the outputs cannot be written there ({exc.strerror or exc}); pass a "
                          f"directory you can write to") from None
    finally:
        for d in missing:  # the deepest first; the caller creates the directory when it writes
            try:
                d.rmdir()
            except OSError:
                pass
    return p


RUN_MARKERS = ("cells.jsonl", "results.parquet", "manifest.json")  # what an evaluate.py run leaves in its directory


def run_in(path: str | os.PathLike) -> str | None:
    """The first of :data:`RUN_MARKERS` that the directory ``path`` holds (an evaluate.py run is there),
    or None."""
    p = Path(path)
    return next((m for m in RUN_MARKERS if (p / m).exists()), None)
