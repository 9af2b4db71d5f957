"""arena: multi-agent environments in which agents tune a gamification economy.

Importing the package registers the environments (nothing else happens at import time):

* ``pettingzoo.make("parallel", "arena/Economy-v1", **kwargs)`` (also ``"aec"``);
* ``gymnasium.make("arena/EconomySingle-v1", opponents=..., **kwargs)``;
* ``pettingzoo.make("parallel", "arena/Replay-v0", log=..., manifest=..., **kwargs)``.
"""

from __future__ import annotations

__version__ = "0.1.0"


def _register() -> None:
    import gymnasium
    import pettingzoo

    if "arena/Economy-v1" not in pettingzoo.parallel_registry:
        pettingzoo.register("parallel", "arena/Economy-v1", entry_point="arena_env.economy_v1:parallel_env")
    if "arena/Economy-v1" not in pettingzoo.aec_registry:
        pettingzoo.register("aec", "arena/Economy-v1", entry_point="arena_env.economy_v1:env")
    if "arena/Replay-v0" not in pettingzoo.parallel_registry:
        pettingzoo.register("parallel", "arena/Replay-v0", entry_point="arena_env.replay_v0:parallel_env")
    if "arena/EconomySingle-v1" not in gymnasium.registry:
        gymnasium.register("arena/EconomySingle-v1", entry_point="arena_env.wrappers.single:EconomySingleEnv")


_register()
