"""The replay arena, version 0 (see :mod:`arena_env.replay.env` for the specification)."""

from arena_env.replay.env import ReplayEnv as raw_env
from arena_env.replay.env import parallel_env

__all__ = ["parallel_env", "raw_env"]
