"""Session setup: the static oracles the tests compute are cached in a temporary directory, never in
the user's cache (``ARENA_CACHE_DIR``, read by :mod:`arena_env.evaluation.oracle`; subprocesses
inherit it)."""

import os
import tempfile

_CACHE = tempfile.TemporaryDirectory(prefix="arena-test-cache-")
os.environ["ARENA_CACHE_DIR"] = _CACHE.name
