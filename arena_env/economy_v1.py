"""The economy arena, version 1 (see :mod:`arena_env.economy.env` for the specification)."""

from arena_env.economy.env import EconomyEnv as raw_env
from arena_env.economy.env import aec_env as env
from arena_env.economy.env import parallel_env

__all__ = ["env", "parallel_env", "raw_env"]
